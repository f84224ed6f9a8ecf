"""Slow clients behind Apache mod_proxy_fcgi, which streams a request body to the responder as
it arrives: as many clients as there are worker threads announce a body, send part of it and
stall. The responder's body deadline frees each worker, so everyone else is still served
meanwhile, and the shipped snippet's mod_reqtimeout answers the stalled clients 408 (Apache keeps
reading the client until then and answers it itself). nginx buffers whole bodies, so it never
pins a worker this way; mod_fcgid buffers them too."""
from __future__ import annotations

import json
import socket
import time

import pytest

from conftest import BASE_PORT, e2e_config, selected, stack_down, stack_up

PORT = BASE_PORT + 64
GATED_PORT = BASE_PORT + 66
WORKERS = 2
BODY_TIMEOUT_SECONDS = 2
APACHE_BODY_TIMEOUT_SECONDS = 10  # RequestReadTimeout body=10-30 in apache/mcp-fcgi-proxy.conf
ANNOUNCED, SENT = 488, 20


@pytest.fixture(scope="module", params=selected(["apache-proxy"]))
def stack(request, binary, tmp_path_factory):
    config = e2e_config(PORT, workers=WORKERS)
    config["limits"]["body_timeout_seconds"] = BODY_TIMEOUT_SECONDS
    s = stack_up(request.param, PORT, binary, tmp_path_factory.mktemp("slow-clients"), config, mint=False)
    yield s
    stack_down(s)


# Three workers of which one may run at once (server.running_workers): a worker waiting for a body
# lends its run permit, so two stalled bodies still leave a permit for everyone else.
GATED_WORKERS, RUNNING_WORKERS = 3, 1


@pytest.fixture(scope="module", params=selected(["apache-proxy"]))
def gated_stack(request, binary, tmp_path_factory):
    config = e2e_config(GATED_PORT, workers=GATED_WORKERS)
    config["server"]["running_workers"] = RUNNING_WORKERS
    config["limits"]["body_timeout_seconds"] = BODY_TIMEOUT_SECONDS
    s = stack_up(request.param, GATED_PORT, binary, tmp_path_factory.mktemp("slow-clients-gated"), config, mint=False)
    yield s
    stack_down(s)


def stalled_post(port: int) -> socket.socket:
    """A POST /mcp that announces ANNOUNCED bytes of body, sends SENT of them, and stops."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nContent-Length: {ANNOUNCED}\r\n\r\n")
    conn.sendall(head.encode() + b'{"jsonrpc":"2.0","id"'[:SENT])
    return conn


def read_reply(conn: socket.socket, timeout: float) -> tuple[int, bytes]:
    """The status and body of the one answer on `conn`, read until the server closes it."""
    conn.settimeout(timeout)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def health_within(port: int, seconds: float) -> tuple[int, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=seconds) as conn:
        conn.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        status, _ = read_reply(conn, seconds)
    return status, time.monotonic() - started


def test_stalled_bodies_do_not_pin_every_worker(stack):
    assert health_within(PORT, 5)[0] == 200
    stalled = [stalled_post(PORT) for _ in range(WORKERS)]
    try:
        time.sleep(0.5)  # let Apache hand each one to a worker
        started = time.monotonic()
        status, elapsed = health_within(PORT, BODY_TIMEOUT_SECONDS + 4)
        assert status == 200, f"GET /health behind {WORKERS} stalled bodies: status {status} after {elapsed:.1f} s"
        assert elapsed < BODY_TIMEOUT_SECONDS + 3, f"GET /health waited {elapsed:.1f} s"

        for conn in stalled:
            status, body = read_reply(conn, APACHE_BODY_TIMEOUT_SECONDS + 8)
            waited = time.monotonic() - started
            assert status == 408, f"a stalled body got {status} after {waited:.1f} s: {body[:200]!r}"
            assert waited < APACHE_BODY_TIMEOUT_SECONDS + 4, f"the 408 came after {waited:.1f} s"
    finally:
        for conn in stalled:
            conn.close()
    # Every worker is free again.
    assert health_within(PORT, 5)[0] == 200


def serving_lines(stack) -> list[dict]:
    """The responder's "serving FastCGI" log lines, from every log of the stack."""
    lines = []
    for f in sorted((stack.run_dir / "logs").glob("*.log")):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"serving FastCGI"' in line:
                lines.append(json.loads(line))
    return lines


def test_a_worker_waiting_for_a_body_lends_its_run_permit(gated_stack):
    assert health_within(GATED_PORT, 5)[0] == 200
    # The gate is on: three workers, one run permit (else the test below proves nothing).
    serving = serving_lines(gated_stack)
    assert serving, gated_stack.logs()
    assert serving[-1]["workers"] == GATED_WORKERS and serving[-1]["running_workers"] == RUNNING_WORKERS, serving
    stalled = [stalled_post(GATED_PORT) for _ in range(GATED_WORKERS - 1)]
    try:
        time.sleep(0.5)
        # Without the lent permits the third worker would wait for one until a body deadline freed it.
        status, elapsed = health_within(GATED_PORT, BODY_TIMEOUT_SECONDS + 4)
        assert status == 200, f"GET /health behind {len(stalled)} stalled bodies: status {status} after {elapsed:.1f} s"
        assert elapsed < BODY_TIMEOUT_SECONDS / 2, f"GET /health waited {elapsed:.1f} s for a run permit"
    finally:
        for conn in stalled:
            conn.close()
    assert health_within(GATED_PORT, 5)[0] == 200
