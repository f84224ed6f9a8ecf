"""SIGTERM under load: the responder stops accepting, finishes what it has, exits 0.

A private nginx stack (its own port and run dir) gets a bounded burst of concurrent
tools/call requests; mid-burst the responder gets SIGTERM. Every request must end with
a complete answer: a full 200 JSON-RPC result, or nginx's 502/503 for requests that
reached it after the responder stopped accepting. Nothing may hang or be cut short,
and the process must exit 0 within shutdown_grace_seconds."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from conftest import SHUTDOWN_GRACE_SECONDS, SHUTDOWN_PORT, e2e_config, selected, stack_down, stack_up

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
