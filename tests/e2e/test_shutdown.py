"""SIGTERM: the responder stops accepting, finishes what it has, and its exit status says
whether it managed to.

Under load through nginx: a private nginx stack (its own port and run dir) gets a bounded
burst of concurrent tools/call requests; mid-burst the responder gets SIGTERM. Every request
must end with a complete answer: a full 200 JSON-RPC result, or nginx's 502/503 for requests
that reached it after the responder stopped accepting. Nothing may hang or be cut short,
and the process must exit 0 within shutdown_grace_seconds.

Past the grace period: the responder alone on a unix socket, spoken to in FastCGI, with a
backend tool whose (fake, loopback) backend answers only after the grace period is over.
SIGTERM while that call runs must end the process with status 1 once the grace period is
over, so a supervisor knows an answer was cut off; the same responder stopped with nothing
in flight exits 0."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

import fcgi_client
from conftest import (DEV_TENANT, SHUTDOWN_GRACE_SECONDS, SHUTDOWN_PORT, e2e_config, responder_config, selected, stack_down,
                      stack_up)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from fake_backend import BackendModel, start_backend  # noqa: E402
from fake_entra import TokenRegistry  # noqa: E402

CONCURRENCY = 16
LOAD_BEFORE_SIGTERM = 1.0      # seconds of steady load before the signal
LOAD_AFTER_EXIT = 0.5          # keep sending briefly after the exit: nginx must answer 502/503
REQUEST_TIMEOUT = 15.0         # a request taking longer counts as hung


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None
    body: bytes
    request_id: int
    error: str | None = None


def worker(url: str, headers: dict, stop: threading.Event, out: list, lock: threading.Lock, base_id: int):
    n = 0
    with httpx2.Client(timeout=REQUEST_TIMEOUT) as client:
        while not stop.is_set():
            n += 1
            rid = base_id + n
            body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                    "params": {"name": "server_info", "arguments": {}}}
            t0 = time.monotonic()
            try:
                r = client.post(url, json=body, headers=headers)
                o = Outcome(t0, time.monotonic(), r.status_code, r.content, rid)
            except Exception as exc:  # timeouts, resets: exactly what must not happen
                o = Outcome(t0, time.monotonic(), None, b"", rid, f"{type(exc).__name__}: {exc}")
            with lock:
                out.append(o)


@pytest.mark.skipif("nginx" not in selected(["nginx"]), reason="E2E_SERVERS excludes nginx")
def test_sigterm_under_load_drains_and_exits_zero(binary, tmp_path):
    stack = stack_up("nginx", SHUTDOWN_PORT, binary, tmp_path,
                     e2e_config(SHUTDOWN_PORT, grace=SHUTDOWN_GRACE_SECONDS, workers=4))
    try:
        run = stack.run_dir
        pid = int((run / "responder.pid").read_text())
        url = f"{stack.base_url}/mcp"
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        if stack.token:
            headers["Authorization"] = f"Bearer {stack.token}"

        outcomes: list[Outcome] = []
        lock, stop = threading.Lock(), threading.Event()
        threads = [threading.Thread(target=worker, args=(url, headers, stop, outcomes, lock, i * 1_000_000),
                                    daemon=True) for i in range(CONCURRENCY)]
        for t in threads:
            t.start()
        time.sleep(LOAD_BEFORE_SIGTERM)

        killed_at = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        exit_file = run / "responder.exit"
        deadline = killed_at + SHUTDOWN_GRACE_SECONDS + 2
        while not exit_file.exists() or not exit_file.read_text().strip():
            assert time.monotonic() < deadline, (
                f"responder still running {SHUTDOWN_GRACE_SECONDS + 2} s after SIGTERM\n{stack.logs()}")
            time.sleep(0.05)
        exited_at = time.monotonic()
        time.sleep(LOAD_AFTER_EXIT)
        stop.set()
        for t in threads:
            t.join(REQUEST_TIMEOUT + 5)
        assert not any(t.is_alive() for t in threads), "a client thread is stuck (hung request)"

        exit_code = exit_file.read_text().strip()
        assert exit_code == "0", f"responder exit status {exit_code}\n{stack.logs()}"
        assert exited_at - killed_at <= SHUTDOWN_GRACE_SECONDS + 0.5

        errors = [o for o in outcomes if o.error]
        assert not errors, f"{len(errors)} requests failed at the HTTP level, e.g. {errors[:3]}"
        statuses = {o.status for o in outcomes}
        assert statuses <= {200, 502, 503}, f"unexpected statuses {statuses}"

        for o in outcomes:
            if o.status != 200:
                continue
            doc = json.loads(o.body)  # a truncated body fails here
            assert doc.get("id") == o.request_id, doc
            assert doc["result"]["structuredContent"], doc

        before = [o for o in outcomes if o.ended < killed_at]
        assert len(before) >= CONCURRENCY, f"only {len(before)} requests before SIGTERM; load too light"
        assert all(o.status == 200 for o in before), "a request failed before SIGTERM was sent"
        after_exit = [o for o in outcomes if o.started > exited_at]
        assert after_exit and all(o.status in (502, 503) for o in after_exit), \
            "after the responder exited nginx must answer 502/503"
        in_window = [o for o in outcomes if o.started <= killed_at < o.ended]
        print(f"\n{len(outcomes)} requests, {len(before)} before SIGTERM, {len(in_window)} in flight at SIGTERM "
              f"({sum(o.status == 200 for o in in_window)} answered 200), exit after "
              f"{exited_at - killed_at:.2f} s")
    finally:
        proc = stack_down(stack)
        assert proc.returncode == 0 or "exited with status 0" in proc.stderr, proc.stderr


# ------------------------------------------------------------------ past the grace period

SHORT_GRACE_SECONDS = 1
SLOW_BACKEND_SECONDS = SHORT_GRACE_SECONDS + 1.5   # the backend answers after the grace period is over
BACKEND_TIMEOUT_SECONDS = 10                       # ...but well within the tool's own timeout
EXIT_MARGIN_SECONDS = 1.0                          # from the end of the grace period to the exit
API_KEY = "e2e-shutdown-api-key"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25",
               "Content-Type": "application/json"}


@dataclass
class Responder:
    """`mcp-fcgi serve --listen unix:…` started by the test itself, its JSON log in a file."""
    process: subprocess.Popen
    socket: str
    log: Path
    token: str

    def log_lines(self) -> list[dict]:
        # Only whole lines: the responder may be writing the last one as it is read.
        complete = self.log.read_text(errors="replace").split("\n")[:-1]
        return [json.loads(line) for line in complete if line.startswith("{")]

    def messages(self) -> list[str]:
        return [line.get("msg", "") for line in self.log_lines()]

    def call(self, tool: str, timeout: float) -> tuple[int, dict, bytes]:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": tool, "arguments": {}}}).encode()
        return fcgi_client.request(self.socket, "POST", "/mcp", body=body, timeout=timeout,
                                   headers={**MCP_HEADERS, "Authorization": f"Bearer {self.token}"})

    def stop(self) -> tuple[int, float]:
        """SIGTERM; the exit status and the seconds it took. Fails if it outlives grace + margin."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=SHORT_GRACE_SECONDS + EXIT_MARGIN_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"responder still running {SHORT_GRACE_SECONDS + EXIT_MARGIN_SECONDS} s after SIGTERM\n"
                        f"{self.log.read_text(errors='replace')[-4000:]}")
        return status, time.monotonic() - sent


@pytest.fixture
def slow_backend():
    # Only the api-key routes are used: no tokens, so the registry and resource stay unused.
    model = BackendModel(registry=TokenRegistry(), resource="api://unused", api_key=API_KEY,
                         slow_seconds=SLOW_BACKEND_SECONDS)
    server = start_backend(model)
    # The slow answer is written after the responder is gone: that broken pipe is the point, not news.
    server.handle_error = lambda request, client_address: None
    yield model, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def responder(binary, tmp_path, slow_backend):
    _, backend_port = slow_backend
    # No TCP port is opened: the port only names the public URL the dev token is minted for.
    cfg = e2e_config(SHUTDOWN_PORT, grace=SHORT_GRACE_SECONDS, workers=2)
    cfg["backends"] = {"slowservice": {
        "base_url": f"http://127.0.0.1:{backend_port}", "allow_insecure_http_for_testing": True,
        "auth_mode": "api-key", "api_key_env": "E2E_SHUTDOWN_API_KEY", "permission": "user",
        "timeout_seconds": BACKEND_TIMEOUT_SECONDS,
        "tools": [{"name": "slow_report", "description": "A report that takes long.", "method": "GET", "path": "/api/slow"},
                  {"name": "service_status", "description": "Service status.", "method": "GET",
                   "path": "/api/service/status"}],
    }}
    config = responder_config(tmp_path, cfg)
    minted = subprocess.run([str(binary), "dev-token", "--config", str(config), "--tenant", DEV_TENANT,
                             "--roles", "MCP.User"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert minted.returncode == 0 and minted.stdout.strip(), minted.stderr
    sock = str(tmp_path / "fcgi.sock")
    log = tmp_path / "responder.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([str(binary), "serve", "--config", str(config), "--listen", f"unix:{sock}"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "E2E_SHUTDOWN_API_KEY": API_KEY})
    r = Responder(process, sock, log, minted.stdout.strip().splitlines()[-1])
    try:
        deadline = time.monotonic() + 10
        while "serving FastCGI" not in r.messages():
            assert process.poll() is None, f"responder exited with {process.returncode}\n{log.read_text()}"
            assert time.monotonic() < deadline, f"responder never started serving\n{log.read_text()}"
            time.sleep(0.05)
        yield r
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_sigterm_with_a_request_past_the_grace_period_exits_one(responder, slow_backend):
    model, _ = slow_backend
    answer: dict = {}

    def slow_call():
        try:
            answer["reply"] = responder.call("slow_report", timeout=SLOW_BACKEND_SECONDS + 10)
        except OSError as exc:  # a reset is as good as an end of file: the answer was cut off
            answer["error"] = exc

    client = threading.Thread(target=slow_call, daemon=True)
    client.start()
    # SIGTERM only once the call is waiting on the backend, so it is surely in flight.
    deadline = time.monotonic() + 10
    while ("GET", "/api/slow") not in model.requests:
        assert client.is_alive() and time.monotonic() < deadline, \
            f"the slow call never reached the backend: {answer}\n{responder.log.read_text()}"
        time.sleep(0.02)

    status, took = responder.stop()
    log = responder.log.read_text(errors="replace")
    assert status == 1, f"exit status {status} with a request cut off by the grace period\n{log}"
    assert took >= SHORT_GRACE_SECONDS - 0.1, f"exited after {took:.2f} s, before the grace period was over"
    over = [line for line in responder.log_lines() if line.get("msg") == "grace period over with requests still running"]
    assert len(over) == 1 and over[0].get("requests") == 1, log
    assert "stopped cleanly" not in responder.messages(), log

    client.join(5)
    assert not client.is_alive(), "the client still waits on a responder that has exited"
    assert "error" in answer or answer["reply"][2] == b"", f"the cut-off call got an answer: {answer}"
    print(f"\nresponder with a call in flight exited 1 after {took:.2f} s")


def test_sigterm_with_nothing_in_flight_exits_zero(responder):
    # The same set-up answers when nothing is cut off, so status 1 above is about the slow call alone.
    status, _, body = responder.call("service_status", timeout=10)
    assert status == 200, body
    assert json.loads(body)["result"]["structuredContent"] == {"status": "ok", "via": "api-key"}, body

    status, took = responder.stop()
    log = responder.log.read_text(errors="replace")
    assert status == 0, f"exit status {status} with nothing in flight\n{log}"
    assert "stopped cleanly" in responder.messages(), log
    assert "grace period over with requests still running" not in responder.messages(), log
    print(f"\nidle responder exited 0 after {took:.2f} s")
