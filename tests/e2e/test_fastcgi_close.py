"""How a worker lets go of a connection the web server does not keep (fastcgi_keep_conn off,
mod_proxy_fcgi, mod_fcgid). Once a request's input has ended, the worker closes at once and
takes the next connection; while the web server may still be sending, it keeps libfcgi's
draining close, so the sender never meets a closed socket and the answer is not lost."""
from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

import fcgi_client
from conftest import BASE_PORT, MAX_BODY_BYTES, e2e_config, responder_config

PORT = BASE_PORT + 72


@pytest.fixture
def one_worker(binary, tmp_path):
    """A responder with ONE worker thread: whatever holds it holds every request."""
    config = responder_config(tmp_path, e2e_config(PORT, workers=1))
    sock = str(tmp_path / "w.sock")
    proc = subprocess.Popen([str(binary), "serve", "--config", str(config), "--listen", f"unix:{sock}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "stderr.log", "w"))
    deadline = time.time() + 15
    while True:
        assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
        try:
            if fcgi_client.request(sock, "GET", "/health", timeout=5)[0] == 200:
                break
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        assert time.time() < deadline, "never listened"
        time.sleep(0.05)
    yield sock
    proc.terminate()
    assert proc.wait(timeout=20) == 0


@pytest.mark.parametrize("method, path, body, late_end", [
    ("GET", "/health", b"", False),
    # A body read to its declared length; then the closing record, with it or a moment later
    # (Apache mod_proxy_fcgi sends it in a write of its own).
    ("POST", "/mcp", b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', False),
    ("POST", "/mcp", b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', True),
], ids=["get", "post", "post-late-end"])
def test_a_request_whose_input_ended_frees_the_worker_at_once(one_worker, method, path, body, late_end):
    whole = fcgi_client.message(method, path, body=body)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as held:
        held.settimeout(10)
        held.connect(one_worker)
        if late_end:
            held.sendall(whole[:-8])
            time.sleep(0.1)
            held.sendall(whole[-8:])
        else:
            held.sendall(whole)
        answer = fcgi_client.read_answer(held)
        assert answer.startswith(b"Status: ") or b"\r\n\r\n" in answer, answer[:200]
        # The responder closes its end although this client keeps its own open ...
        assert held.recv(1) == b""
        # ... and the one worker answers the next connection without waiting for this one
        # (libfcgi's close would hold it up to 2 s for the client to close first).
        started = time.monotonic()
        status, _, _ = fcgi_client.request(one_worker, "GET", "/health", timeout=10)
        assert status == 200
        assert time.monotonic() - started < 1.0


def test_a_body_answered_before_it_was_read_is_still_taken_whole(one_worker):
    """413 before the body is read: the sender must be able to finish sending (as Apache
    mod_proxy_fcgi streams a body), and the answer must arrive whole."""
    body = b"x" * (4 * MAX_BODY_BYTES)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        # Far less than the body, so the sender is still sending when the answer comes.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < len(body) // 4
        s.settimeout(10)
        s.connect(one_worker)
        failures: list[BaseException] = []

        def send():
            try:
                s.sendall(fcgi_client.message("POST", "/mcp", body=body))
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        answer = fcgi_client.read_answer(s)
        sender.join(timeout=10)
        assert not sender.is_alive()
        assert failures == [], failures
        assert answer.startswith(b"Status: 413"), answer[:200]
        assert b"exceeds" in answer or b"larger" in answer, answer


def test_a_client_that_never_ends_its_input_still_gets_its_answer(one_worker):
    """No closing stdin record: the answer is out before the worker looks for it, and the
    worker is back within two of libfcgi's bounds (2 s looking for the record, then at most
    2 s of libfcgi's own close) although this client keeps its socket open."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(one_worker)
        started = time.monotonic()
        s.sendall(fcgi_client.message("GET", "/health")[:-8])  # everything but the closing STDIN record
        assert b'"status":"ok"' in fcgi_client.read_answer(s)
        assert time.monotonic() - started < 1.0
        status, _, _ = fcgi_client.request(one_worker, "GET", "/health", timeout=10)
        assert status == 200
        assert time.monotonic() - started < 6.0
