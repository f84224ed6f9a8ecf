"""A minimal FastCGI client (responder role) for talking to mcp-fcgi without a web
server: socket activation tests and REMOTE_ADDR control. One request per connection."""
from __future__ import annotations

import socket
import struct

BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7


def _record(kind: int, content: bytes, request_id: int = 1) -> bytes:
    return struct.pack(">BBHHBx", 1, kind, request_id, len(content), 0) + content


def _pair(name: str, value: str) -> bytes:
    out = b""
    for part in (name.encode(), value.encode()):
        n = len(part)
        out += bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return out + name.encode() + value.encode()


def message(method: str, path: str, *, remote_addr: str = "127.0.0.1", headers: dict[str, str] | None = None,
            body: bytes = b"") -> bytes:
    """One request as the web server sends it: begin, params, stdin (in records of at most
    65,535 bytes) and the closing empty stdin record, which is the last 8 bytes."""
    params = {
        "REQUEST_METHOD": method, "REQUEST_URI": path, "SCRIPT_NAME": path, "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": remote_addr, "CONTENT_LENGTH": str(len(body)),
    }
    if body:
        params["CONTENT_TYPE"] = (headers or {}).get("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        params["HTTP_" + name.upper().replace("-", "_")] = value
    encoded = b"".join(_pair(k, v) for k, v in params.items())
    out = _record(BEGIN_REQUEST, struct.pack(">HB5x", 1, 0)) + _record(PARAMS, encoded) + _record(PARAMS, b"")
    for at in range(0, len(body), 65535):
        out += _record(STDIN, body[at:at + 65535])
    return out + _record(STDIN, b"")


def read_answer(s: socket.socket) -> bytes:
    """The STDOUT content up to FCGI_END_REQUEST; the socket is left open.
    ConnectionError if the responder closes before the end."""
    data = b""
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("the responder closed the connection without answering")
        data += chunk
        while len(data) >= 8:
            _, kind, _, length, padding = struct.unpack(">BBHHB", data[:7])
            if len(data) < 8 + length + padding:
                break
            content = data[8:8 + length]
            data = data[8 + length + padding:]
            if kind == STDOUT:
                out += content
            elif kind == END_REQUEST:
                return out


def request(sock_path: str | tuple[str, int], method: str, path: str, *, remote_addr: str = "127.0.0.1",
            headers: dict[str, str] | None = None, body: bytes = b"", timeout: float = 10,
            source: str | None = None) -> tuple[int, dict, bytes]:
    """Sends one request to a unix socket path or a (host, port), from `source` if given;
    returns (status, headers lower-cased, body). ConnectionError if closed before the end."""
    with socket.socket(socket.AF_INET if isinstance(sock_path, tuple) else socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        if source:
            s.bind((source, 0))
        s.connect(sock_path)
        s.sendall(message(method, path, remote_addr=remote_addr, headers=headers, body=body))
        out = read_answer(s)
    head, _, payload = out.partition(b"\r\n\r\n")
    status, fields = 200, {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    if "status" in fields:
        status = int(fields["status"].split()[0])
    return status, fields, payload
