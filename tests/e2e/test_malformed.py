"""Malformed and hostile requests written byte for byte on raw sockets, through nginx,
Apache mod_proxy_fcgi and Apache mod_fcgid.

Every case asserts the exact answer: the JSON-RPC error code and message where mcp-fcgi
answers, the status where the web server refuses the request before mcp-fcgi sees it. After
each case the service must still answer on a fresh connection: /health, and an authenticated
`tools/call whoami`. The table in tests/e2e/README.md lists the cases."""
from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from conftest import MAX_BODY_BYTES, MAX_JSON_DEPTH, MAIN_SERVERS, selected

# ------------------------------------------------------------------ raw HTTP


@dataclass
class Answer:
    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def __repr__(self) -> str:
        return f"Answer({self.status} {self.reason}, {self.content_type!r}, {self.body[:300]!r})"


def raw(v: str | bytes) -> bytes:
    return v if isinstance(v, bytes) else v.encode("latin-1")


def build(method: str, target: str | bytes, headers: list[tuple[str | bytes, str | bytes]], body: bytes = b"",
          version: str = "HTTP/1.1") -> bytes:
    """The request exactly as given: headers in order, no Content-Length unless one is listed."""
    head = raw(method) + b" " + raw(target) + b" " + raw(version) + b"\r\n"
    head += b"".join(raw(k) + b": " + raw(v) + b"\r\n" for k, v in headers)
    return head + b"\r\n" + body


class Answers(list):
    """The answers on one connection, and whether the server closed it before the timeout."""
    closed: bool = False


def exchange(port: int, data: bytes, *, timeout: float = 15) -> Answers:
    """Writes `data` on a fresh connection and reads until the server closes it (or `timeout`
    passes: the test then sees what arrived, and a missing answer fails its assertion)."""
    deadline = time.monotonic() + timeout
    received = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        try:
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    closed = True
                    break
                received += chunk
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed = True
    answers = Answers(parse_answers(received))
    answers.closed = closed
    return answers


def _dechunk(data: bytes) -> tuple[bytes, bytes]:
    body = b""
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        if not sep:
            raise ValueError("truncated chunked answer")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            _, _, data = data.partition(b"\r\n")  # our answers carry no trailers
            return body, data
        body, data = body + data[:size], data[size + 2:]


def parse_answers(data: bytes) -> list[Answer]:
    """Every answer in `data`, in order: interim 1xx, pipelined, chunked or close-delimited."""
    answers = []
    while data.startswith(b"HTTP/"):
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = headers[key] + ", " + value.strip() if key in headers else value.strip()
        answer = Answer(int(parts[1]), parts[2] if len(parts) > 2 else "", headers)
        if 100 <= answer.status < 200 or answer.status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body, data = _dechunk(data)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            body, data = data[:n], data[n:]
        else:
            body, data = data, b""
        answer.body = body
        answers.append(answer)
    return answers


# ------------------------------------------------------------------ requests


@dataclass
class Target:
    server: str
    port: int
    token: str

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


PING = b'{"jsonrpc":"2.0","id":7,"method":"ping"}'
WHOAMI = b'{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'


def mcp_headers(t: Target, *, omit: tuple[str, ...] = (), length: int | None = None,
                close: bool = True) -> list[tuple[str, str]]:
    """The headers of a well-formed legacy-era POST /mcp; `omit` leaves names out (lower case)."""
    h = [("Host", t.host), ("Authorization", f"Bearer {t.token}"), ("Content-Type", "application/json"),
         ("Accept", "application/json, text/event-stream"), ("MCP-Protocol-Version", "2025-11-25")]
    if length is not None:
        h.append(("Content-Length", str(length)))
    if close:
        h.append(("Connection", "close"))
    return [(k, v) for k, v in h if k.lower() not in omit]


def post(t: Target, body: bytes, *extra: tuple[str | bytes, str | bytes], target: str | bytes = "/mcp",
         omit: tuple[str, ...] = (), version: str = "HTTP/1.1") -> bytes:
    """POST `body` with a Content-Length that matches it, plus `extra` headers."""
    return build("POST", target, [*mcp_headers(t, omit=omit, length=len(body)), *extra], body, version)


def post_chunked(t: Target, chunks: bytes, *extra: tuple[str | bytes, str | bytes]) -> bytes:
    """POST with `Transfer-Encoding: chunked` and `chunks` as the (possibly broken) chunked body."""
    return build("POST", "/mcp", [*mcp_headers(t), ("Transfer-Encoding", "chunked"), *extra], chunks)


def chunked(body: bytes, size: int = 16) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def column_after(body: bytes, needle: bytes, occurrence: int = 1) -> int:
    """The 1-based column just past the `occurrence`-th `needle` in a one-line body."""
    at = -1
    for _ in range(occurrence):
        at = body.index(needle, at + 1)
    return at + len(needle) + 1


# ------------------------------------------------------------------ expectations


@dataclass
class Rpc:
    """mcp-fcgi's (or a snippet's) JSON-RPC error; `message` is exact, or a pattern where a
    number in it depends on how the web server read the body."""
    status: int
    code: int
    message: str | re.Pattern
    id: Any = None
    data: dict | None = None


@dataclass
class Served:
    """The ping (id 7) answered normally."""


@dataclass
class Json:
    """A JSON answer of mcp-fcgi's that is not JSON-RPC (the RFC 6750 401)."""
    status: int
    doc: dict


@dataclass
class Web:
    """The web server refused the request itself with this status (its own page)."""
    status: int


@dataclass
class Dropped:
    """The web server closed the connection without an answer (nginx's 408: it logs it, sends nothing)."""


Expect = Rpc | Served | Json | Web | Dropped


def check(answer: Answer, expect: Expect) -> None:
    if isinstance(expect, Served):
        assert answer.status == 200, answer
        assert answer.json == {"jsonrpc": "2.0", "id": 7, "result": {}}, answer
    elif isinstance(expect, Rpc):
        assert answer.status == expect.status, answer
        assert answer.content_type.startswith("application/json"), answer
        doc = answer.json
        assert set(doc) == {"jsonrpc", "id", "error"}, doc
        assert doc["error"].get("data") == expect.data and set(doc["error"]) - {"data"} == {"code", "message"}, doc
        assert (doc["jsonrpc"], doc["id"], doc["error"]["code"]) == ("2.0", expect.id, expect.code), doc
        if isinstance(expect.message, re.Pattern):
            assert expect.message.fullmatch(doc["error"]["message"]), doc
        else:
            assert doc["error"]["message"] == expect.message, doc
    elif isinstance(expect, Json):
        assert answer.status == expect.status, answer
        assert answer.content_type.startswith("application/json"), answer
        assert answer.json == expect.doc, answer
    else:
        assert answer.status == expect.status, answer
        assert b'"jsonrpc"' not in answer.body, f"expected the web server's own answer, got {answer}"


def still_serving(t: Target) -> None:
    """A fresh connection still gets /health and an authenticated whoami."""
    [health] = exchange(t.port, build("GET", "/health", [("Host", t.host), ("Connection", "close")]))
    assert health.status == 200 and health.json["status"] == "ok", health
    [who] = exchange(t.port, post(t, WHOAMI))
    assert who.status == 200, who
    result = who.json["result"]
    assert result.get("isError") in (None, False), result
    assert result["structuredContent"]["authenticated"] is True, result


@pytest.fixture(params=selected(MAIN_SERVERS))
def target(request, stacks) -> Target:
    stack = stacks.get(request.param)
    return Target(request.param, stack.port, stack.token)


# ------------------------------------------------------------------ the cases

NGINX, PROXY, FCGID = "nginx", "apache-proxy", "apache-fcgid"
APACHE = (PROXY, FCGID)
OVER_WEB_SERVER_LIMIT = 3 << 20  # client_max_body_size / LimitRequestBody are 2 MiB in the shipped snippets
PARSE = "Parse error: "
BAD_ID = ("\"id\" must be a string or an integer from -9223372036854775808 to 9223372036854775807 "
          "written without fraction or exponent")
TOO_LARGE_SNIPPET = "The request body is larger than this server accepts"
TOO_LARGE_APP = "The request body is too large: request body of {} bytes exceeds the limit of %d bytes" % MAX_BODY_BYTES
TOO_LARGE_APP_UNDECLARED = f"The request body is too large: request body exceeds the limit of {MAX_BODY_BYTES} bytes"
TOO_LARGE_APP_ANY = re.compile(re.escape(TOO_LARGE_APP).replace(r"\{\}", r"\d+"))
UNSUPPORTED_TYPE = Rpc(415, -32600, "Unsupported Media Type: the body must be application/json")
STALL_SECONDS = 10  # client_body_timeout / RequestReadTimeout body=10 in the shipped snippets


@dataclass
class Case:
    id: str
    build: Callable[[Target], bytes]
    expect: Expect | dict[str, Expect]
    timeout: float = 15

    def expected(self, server: str) -> Expect:
        if not isinstance(self.expect, dict):
            return self.expect
        return next(e for names, e in self.expect.items() if server in (names if isinstance(names, tuple) else (names,)))


def parse_error(what: str, column: int) -> Rpc:
    return Rpc(400, -32700, f"{PARSE}{what} at line 1, column {column}")


def dup_key(key: bytes, body: bytes) -> Rpc:
    return parse_error(f'duplicate key {key.decode()}', column_after(body, key, 2))


def with_header(request: bytes, name: bytes, value: bytes) -> bytes:
    """`request` with one more header line, written as given (bytes no builder would send)."""
    return request.replace(b"\r\n\r\n", b"\r\n" + name + b": " + value + b"\r\n\r\n", 1)


DUP_METHOD = b'{"jsonrpc":"2.0","id":7,"method":"ping","method":"tools/call"}'
DUP_ID = b'{"jsonrpc":"2.0","id":7,"method":"ping","id":8}'
DUP_PARAMS = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{},"params":{"a":1}}'
DUP_NESTED = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"name":"a","name":"b"}}'
BAD_UTF8 = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"s":"\xff\xfe"}}'
OVERLONG_UTF8 = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"s":"\xc0\xaf"}}'
SURROGATE_UTF8 = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"s":"\xed\xa0\x80"}}'
LONE_SURROGATE = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"s":"\\ud800"}}'
NUL = b"\x00"
RAW_NUL = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"s":"a\x00b"}}'
NUL_AFTER = PING + NUL
ESCAPED_NUL_METHOD = b'{"jsonrpc":"2.0","id":7,"method":"ping\\u0000"}'
TRUNCATED = b'{"jsonrpc":"2.0","id":7,"method":"pi'
HUGE_ID = b'{"jsonrpc":"2.0","id":' + b"9" * 400 + b',"method":"ping"}'
ID_PAST_INT64 = b'{"jsonrpc":"2.0","id":9223372036854775808,"method":"ping"}'
HUGE_NUMBER = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"n":1e400}}'
LONG_INTEGER = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"n":' + b"1" * 300 + b"}}"
BOM_PING = b"\xef\xbb\xbf" + PING
DEEP_PREFIX = b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"deep":'
DEPTH = 10_000
MODERN = "2026-07-28"
MODERN_WHOAMI = (b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{},'
                 b'"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')


def deep(opening: str, closing: str) -> bytes:
    return DEEP_PREFIX + (opening * DEPTH + closing * DEPTH).encode() + b"}}"


def too_deep(opening: str) -> Rpc:
    # The message object and params are two levels; the parser stops at the first past the limit.
    at = len(DEEP_PREFIX) + (MAX_JSON_DEPTH - 2) * len(opening)
    return Rpc(400, -32700, f"JSON nested too deeply: nesting deeper than {MAX_JSON_DEPTH} levels at line 1, column {at + 1}")


def padded_ping(size: int) -> bytes:
    """A valid ping of exactly `size` bytes (trailing whitespace is allowed JSON)."""
    return PING + b" " * (size - len(PING))


def typed(t: Target, content_type: str) -> bytes:
    return with_header(post(t, PING, omit=("content-type",)), b"Content-Type", content_type.encode())


CASES: list[Case] = [
    # --- lengths
    Case("content-length-conflicting", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Content-Length", "40"),
                                                                        ("Content-Length", "41")], PING + b" "),
         Web(400)),
    Case("content-length-repeated-equal", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Content-Length", "40"),
                                                                           ("Content-Length", "40")], PING),
         Web(400)),
    Case("content-length-list", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Content-Length", "40, 40")], PING),
         Web(400)),
    Case("content-length-negative", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Content-Length", "-1")], PING),
         Web(400)),
    Case("content-length-not-a-number", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Content-Length", "4o")], PING),
         Web(400)),
    Case("content-length-plus-sign", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Content-Length", "+40")], PING),
         Web(400)),
    Case("content-length-overflow", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Content-Length", "9" * 30)], PING),
         Web(400)),
    Case("content-length-short-of-the-body", lambda t: build("POST", "/mcp", mcp_headers(t, length=20), PING),
         parse_error("unterminated string", 21)),
    Case("content-length-over-app-limit", lambda t: post(t, padded_ping(MAX_BODY_BYTES + 1)),
         Rpc(413, -32600, TOO_LARGE_APP.format(MAX_BODY_BYTES + 1))),
    # Declared over the web server's ceiling: refused before the body is read, as JSON-RPC.
    Case("content-length-over-web-server-limit", lambda t: build("POST", "/mcp", mcp_headers(t, length=OVER_WEB_SERVER_LIMIT), PING),
         Rpc(413, -32600, TOO_LARGE_SNIPPET)),
    Case("body-over-web-server-limit", lambda t: post(t, padded_ping(OVER_WEB_SERVER_LIMIT)), Rpc(413, -32600, TOO_LARGE_SNIPPET)),
    # --- transfer codings
    Case("chunked-valid", lambda t: post_chunked(t, chunked(PING)), Served()),
    Case("chunked-with-trailer", lambda t: post_chunked(t, chunked(PING)[:-2] + b"X-Trailer: 1\r\n\r\n"), Served()),
    Case("chunked-with-extension", lambda t: post_chunked(t, b"%x;name=value\r\n%s\r\n0\r\n\r\n" % (len(PING), PING)),
         Served()),
    # RFC 9112 §6.3: Transfer-Encoding wins and the Content-Length goes (Apache), or the request is refused (nginx).
    Case("chunked-and-content-length", lambda t: post_chunked(t, chunked(PING), ("Content-Length", "5")),
         {NGINX: Web(400), APACHE: Served()}),
    Case("chunked-twice", lambda t: post_chunked(t, chunked(PING), ("Transfer-Encoding", "chunked")),
         {NGINX: Web(400), APACHE: Served()}),
    Case("transfer-encoding-unknown", lambda t: build("POST", "/mcp", [*mcp_headers(t), ("Transfer-Encoding", "gzip")], PING),
         {NGINX: Web(501), APACHE: Web(400)}),
    # Broken chunking. mod_fcgid hands on what it read before Apache gave up (the chunk-size line),
    # and mcp-fcgi refuses that as JSON; nginx and mod_proxy_fcgi refuse the request themselves.
    Case("chunked-size-not-hex", lambda t: post_chunked(t, b"zz\r\n" + PING + b"\r\n0\r\n\r\n"),
         {(NGINX, PROXY): Web(400), FCGID: parse_error("unexpected character 'z'", 1)}),
    Case("chunked-size-negative", lambda t: post_chunked(t, b"-28\r\n" + PING + b"\r\n0\r\n\r\n"),
         {(NGINX, PROXY): Web(400), FCGID: Rpc(400, -32600, "The body must be a JSON-RPC 2.0 object")}),
    Case("chunked-size-overflow", lambda t: post_chunked(t, b"f" * 20 + b"\r\n" + PING + b"\r\n0\r\n\r\n"),
         {NGINX: Web(400), PROXY: Rpc(413, -32600, TOO_LARGE_SNIPPET), FCGID: parse_error("invalid literal", 1)}),
    Case("chunked-missing-crlf-after-data", lambda t: post_chunked(t, b"%x\r\n%s0\r\n\r\n" % (len(PING), PING)),
         {(NGINX, PROXY): Web(400), FCGID: parse_error("unexpected data after the JSON value", len(PING) + 1)}),
    # A chunk shorter than its size line: the web server waits for the rest, then drops the client.
    Case("chunked-size-larger-than-data", lambda t: post_chunked(t, b"%x\r\n%s\r\n0\r\n\r\n" % (len(PING) + 5, PING)),
         {NGINX: Dropped(), PROXY: Web(408), FCGID: Web(500)}, timeout=STALL_SECONDS + 10),
    Case("chunked-over-app-limit", lambda t: post_chunked(t, chunked(padded_ping(MAX_BODY_BYTES + 40), 4096)),
         {(NGINX, FCGID): Rpc(413, -32600, TOO_LARGE_APP.format(MAX_BODY_BYTES + 40)),
          PROXY: Rpc(413, -32600, TOO_LARGE_APP_UNDECLARED)}),
    Case("chunked-over-web-server-limit", lambda t: post_chunked(t, chunked(padded_ping(OVER_WEB_SERVER_LIMIT), 1 << 16)),
         {NGINX: Rpc(413, -32600, TOO_LARGE_SNIPPET), PROXY: Rpc(413, -32600, TOO_LARGE_APP_UNDECLARED),
          FCGID: Rpc(413, -32600, TOO_LARGE_APP_ANY)}),
    Case("chunk-over-web-server-limit", lambda t: post_chunked(t, b"%x\r\n%s\r\n0\r\n\r\n" % (OVER_WEB_SERVER_LIMIT, padded_ping(OVER_WEB_SERVER_LIMIT))),
         {NGINX: Rpc(413, -32600, TOO_LARGE_SNIPPET), PROXY: Rpc(413, -32600, TOO_LARGE_APP_UNDECLARED),
          FCGID: Rpc(413, -32600, TOO_LARGE_APP_ANY)}),
    # --- header floods
    # 1000 headers pass nginx's buffers (4 x 8 KiB) no more than Apache's LimitRequestFields (100);
    # 150 short ones fit nginx's buffers and reach mcp-fcgi.
    Case("many-headers", lambda t: post(t, PING, *[(f"X-Flood-{i}", "x") for i in range(1000)]), Web(400)),
    Case("150-headers", lambda t: post(t, PING, *[(f"X-F-{i}", "x") for i in range(150)]),
         {NGINX: Served(), APACHE: Web(400)}),
    Case("one-huge-header", lambda t: post(t, PING, ("X-Huge", "x" * 20000)), Web(400)),
    Case("huge-authorization", lambda t: with_header(post(t, PING, omit=("authorization",)), b"Authorization",
                                                     b"Bearer " + b"a" * 20000), Web(400)),
    Case("huge-request-line", lambda t: post(t, PING, target="/mcp?" + "q" * 20000), Web(414)),
    # nginx drops an invalid header line (ignore_invalid_headers); Apache refuses the request.
    Case("header-without-colon", lambda t: post(t, PING).replace(b"\r\n\r\n", b"\r\nX-No-Colon\r\n\r\n", 1),
         {NGINX: Served(), APACHE: Web(400)}),
    Case("header-space-before-colon", lambda t: post(t, PING).replace(b"Accept:", b"Accept :"), Web(400)),
    # Obsolete line folding: Apache joins the lines (RFC 9112 §5.2 allows it), nginx refuses.
    Case("header-line-folding", lambda t: post(t, PING, ("X-Folded", "a\r\n b")), {NGINX: Web(400), APACHE: Served()}),
    # --- bytes that are not text
    Case("body-invalid-utf8", lambda t: post(t, BAD_UTF8),
         parse_error("invalid UTF-8 in string", column_after(BAD_UTF8, b'\xff\xfe"'))),
    Case("body-overlong-utf8", lambda t: post(t, OVERLONG_UTF8),
         parse_error("invalid UTF-8 in string", column_after(OVERLONG_UTF8, b'\xc0\xaf"'))),
    Case("body-utf8-encoded-surrogate", lambda t: post(t, SURROGATE_UTF8),
         parse_error("invalid UTF-8 in string", column_after(SURROGATE_UTF8, b'\xed\xa0\x80"'))),
    Case("body-lone-surrogate-escape", lambda t: post(t, LONE_SURROGATE),
         parse_error("unpaired surrogate in string", column_after(LONE_SURROGATE, b"\\ud800"))),
    Case("body-raw-nul-in-string", lambda t: post(t, RAW_NUL),
         parse_error("control character in string", RAW_NUL.index(NUL) + 1)),
    Case("body-nul-after-json", lambda t: post(t, NUL_AFTER),
         parse_error("unexpected data after the JSON value", len(PING) + 1)),
    Case("body-escaped-nul-in-method", lambda t: post(t, ESCAPED_NUL_METHOD),
         Rpc(200, -32601, "Method not found: ping\u0000", id=7)),
    Case("body-byte-order-mark", lambda t: post(t, BOM_PING), parse_error("unexpected character '\\xef'", 1)),
    Case("path-invalid-utf8", lambda t: post(t, PING, target=b"/mcp\xff"), Web(404)),
    Case("path-percent-encoded-invalid-utf8", lambda t: post(t, PING, target="/mcp%ff"), Web(404)),
    Case("path-raw-nul", lambda t: post(t, PING, target=b"/mcp\x00"), Web(400)),
    Case("path-percent-encoded-nul", lambda t: post(t, PING, target="/mcp%00"), {NGINX: Web(400), APACHE: Web(404)}),
    Case("header-invalid-utf8", lambda t: post(t, PING, ("X-Bytes", b"\xff\xfe")), Served()),
    Case("header-raw-nul", lambda t: post(t, PING, ("X-Nul", b"a\x00b")), Web(400)),
    Case("authorization-invalid-utf8", lambda t: with_header(post(t, PING, omit=("authorization",)), b"Authorization",
                                                             b"Bearer " + t.token.encode() + b"\xff"),
         Json(401, {"error": "invalid_token",
                    "error_description": "The access token is malformed: a segment is not unpadded base64url."})),
    # --- credentials and MCP headers
    # A second token: nginx refuses the repeated header, Apache joins both into one that is no JWS.
    Case("authorization-twice", lambda t: post(t, PING, ("Authorization", "Bearer x.y.z")),
         {NGINX: Web(400), APACHE: Json(401, {"error": "invalid_token", "error_description":
                                              "The access token is malformed: a JWS compact token has exactly three segments."})}),
    Case("authorization-scheme-lower-case", lambda t: with_header(post(t, PING, omit=("authorization",)), b"Authorization",
                                                                  b"bearer " + t.token.encode()), Served()),
    Case("authorization-basic", lambda t: with_header(post(t, PING, omit=("authorization",)), b"Authorization",
                                                      b"Basic dXNlcjpwYXNz"),
         Json(401, {"error": "invalid_request", "error_description": "The Authorization header must use the Bearer scheme"})),
    Case("protocol-version-twice", lambda t: post(t, PING, ("MCP-Protocol-Version", "2025-06-18")),
         Rpc(400, -32600, "Unsupported MCP-Protocol-Version: 2025-11-25, 2025-06-18", id=7,
             data={"supported": ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"],
                   "requested": "2025-11-25, 2025-06-18"})),
    Case("origin-null", lambda t: post(t, PING, ("Origin", "null")), Rpc(403, -32600, "Origin not allowed")),
    Case("mcp-name-not-base64", lambda t: with_header(with_header(with_header(
        post(t, MODERN_WHOAMI, omit=("mcp-protocol-version",)), b"MCP-Protocol-Version", MODERN.encode()),
        b"Mcp-Method", b"tools/call"), b"Mcp-Name", b"=?base64?!!!?="),
         Rpc(400, -32020, "Header mismatch: Mcp-Name header is not validly encoded", id=7)),
    Case("method-60k", lambda t: post(t, b'{"jsonrpc":"2.0","id":7,"method":"' + b"m" * 60000 + b'"}'),
         Rpc(200, -32601, "Method not found: " + "m" * 60000, id=7)),
    # --- JSON
    Case("duplicate-method", lambda t: post(t, DUP_METHOD), dup_key(b'"method"', DUP_METHOD)),
    Case("duplicate-id", lambda t: post(t, DUP_ID), dup_key(b'"id"', DUP_ID)),
    Case("duplicate-params", lambda t: post(t, DUP_PARAMS), dup_key(b'"params"', DUP_PARAMS)),
    Case("duplicate-nested-key", lambda t: post(t, DUP_NESTED), dup_key(b'"name"', DUP_NESTED)),
    Case("arrays-10k-deep", lambda t: post(t, deep("[", "]")), too_deep("[")),
    Case("objects-10k-deep", lambda t: post(t, deep('{"a":', "}")), too_deep('{"a":')),
    Case("huge-id", lambda t: post(t, HUGE_ID), parse_error("number out of range", column_after(HUGE_ID, b"9" * 400))),
    Case("id-past-int64", lambda t: post(t, ID_PAST_INT64), Rpc(400, -32600, BAD_ID)),
    Case("huge-number", lambda t: post(t, HUGE_NUMBER),
         parse_error("number out of range", column_after(HUGE_NUMBER, b"1e400"))),
    Case("long-integer", lambda t: post(t, LONG_INTEGER), Served()),
    Case("truncated-json", lambda t: post(t, TRUNCATED), parse_error("unterminated string", len(TRUNCATED) + 1)),
    Case("empty-body", lambda t: post(t, b""), parse_error("unexpected end of input", 1)),
    Case("json-but-not-an-object", lambda t: post(t, b'"ping"'), Rpc(400, -32600, "The body must be a JSON-RPC 2.0 object")),
    Case("empty-batch", lambda t: post(t, b"[]"),
         Rpc(400, -32600, "Batch requests are not supported: send one JSON-RPC message per POST")),
    # --- media types
    Case("content-type-text-plain", lambda t: typed(t, "text/plain"), UNSUPPORTED_TYPE),
    Case("content-type-json-suffix", lambda t: typed(t, "application/json-patch+json"), UNSUPPORTED_TYPE),
    Case("content-type-form", lambda t: typed(t, "application/x-www-form-urlencoded"), UNSUPPORTED_TYPE),
    Case("content-type-missing", lambda t: post(t, PING, omit=("content-type",)), UNSUPPORTED_TYPE),
    # nginx passes the first Content-Type on; Apache joins both, which is not application/json.
    Case("content-type-twice", lambda t: post(t, PING, ("Content-Type", "text/plain")),
         {NGINX: Served(), APACHE: UNSUPPORTED_TYPE}),
    # --- request line, method and Host
    Case("http-1.0-without-host", lambda t: post(t, PING, omit=("host", "connection"), version="HTTP/1.0"), Served()),
    Case("http-1.1-without-host", lambda t: post(t, PING, omit=("host",)), Web(400)),
    Case("host-twice", lambda t: post(t, PING, ("Host", "evil.example")), Web(400)),
    Case("http-version-unknown", lambda t: post(t, PING, version="HTTP/9.9"), {NGINX: Web(505), APACHE: Served()}),
    Case("http-version-garbage", lambda t: post(t, PING, version="HTTQ/1.1"), Web(400)),
    # Methods are case-sensitive: nginx refuses the token, Apache passes it on and mcp-fcgi answers 405.
    Case("method-lower-case", lambda t: build("post", "/mcp", mcp_headers(t, length=len(PING)), PING),
         {NGINX: Web(400), APACHE: Rpc(405, -32600, "Method Not Allowed: the MCP endpoint takes POST only")}),
    Case("absolute-form-target", lambda t: post(t, PING, target=f"http://{t.host}/mcp"), Served()),
    Case("absolute-form-foreign-host", lambda t: post(t, PING, target="http://evil.example/mcp"), Served()),
    # mcp-fcgi routes on the path as sent, so dot segments and doubled slashes are not /mcp.
    Case("dot-segments-to-mcp", lambda t: post(t, PING, target="/x/../mcp"), Web(404)),
    Case("double-slash-path", lambda t: post(t, PING, target="//mcp"), Web(404)),
    Case("query-string", lambda t: post(t, PING, target="/mcp?x=1&x=2"), Served()),
    Case("expect-100-continue", lambda t: post(t, PING, ("Expect", "100-continue")), Served()),
    Case("expect-unknown", lambda t: post(t, PING, ("Expect", "bogus")), {NGINX: Served(), APACHE: Web(417)}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_request(target: Target, case: Case):
    answers = exchange(target.port, case.build(target), timeout=case.timeout)
    final = [a for a in answers if a.status >= 200]
    if isinstance(case.expected(target.server), Dropped):
        assert answers.closed and not final, f"{case.id}: expected the connection closed unanswered: {answers}"
        return still_serving(target)
    assert final, f"{case.id}: no answer within {case.timeout} s (interim: {answers})"
    check(final[0], case.expected(target.server))
    still_serving(target)


# ------------------------------------------------------------------ several requests on one connection


def test_pipelined_requests_are_answered_in_order(target: Target):
    one = build("POST", "/mcp", mcp_headers(target, length=len(PING), close=False), PING)
    two = PING.replace(b'"id":7', b'"id":9')
    answers = exchange(target.port, one + post(target, two))
    assert [a.status for a in answers] == [200, 200], answers
    assert [a.json["id"] for a in answers] == [7, 9], answers
    still_serving(target)


def test_pipelined_garbage_after_a_good_request(target: Target):
    one = build("POST", "/mcp", mcp_headers(target, length=len(PING), close=False), PING)
    answers = exchange(target.port, one + b"GARBAGE\r\n\r\n")
    assert [a.status for a in answers] == [200, 400], answers
    check(answers[0], Served())
    still_serving(target)


def test_request_smuggled_in_a_body_is_not_served(target: Target):
    """A body that holds a second request is the first request's (unparseable) body, never a request."""
    body = PING + build("GET", "/health", [("Host", target.host)])
    answers = exchange(target.port, post(target, body))
    assert len(answers) == 1, answers
    check(answers[0], parse_error("unexpected data after the JSON value", len(PING) + 1))
    still_serving(target)


# ------------------------------------------------------------------ the CGI snippet's 413


@pytest.mark.parametrize("server", selected(["apache-cgi"]))
def test_cgi_snippet_answers_oversized_bodies_as_jsonrpc(stacks, server):
    stack = stacks.get(server)
    t = Target(server, stack.port, stack.token)
    [answer] = exchange(t.port, build("POST", "/mcp", mcp_headers(t, length=OVER_WEB_SERVER_LIMIT), PING))
    check(answer, Rpc(413, -32600, TOO_LARGE_SNIPPET))
    [answer] = exchange(t.port, post(t, padded_ping(MAX_BODY_BYTES + 1)))
    check(answer, Rpc(413, -32600, TOO_LARGE_APP.format(MAX_BODY_BYTES + 1)))
    still_serving(t)
