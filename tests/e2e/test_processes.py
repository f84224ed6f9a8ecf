"""Guarantees that must hold across processes, with four responders forked by spawn-fcgi
behind nginx (as many sites run FastCGI apps): the per-user rate limit is exact over all of
them, every answered request is in the audit trail, and a responder killed mid-run loses
no record of a request it answered."""
from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx2
import pytest

from conftest import BASE_PORT, e2e_config, mint_token, selected, stack_cmd, stack_down, Stack

PORT = BASE_PORT + 16
PROCESSES = 4
BURST = 20
USER = "44444444-4444-4444-8444-444444444444"
BLOCKED = "55555555-5555-4555-8555-555555555555"
BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()


@pytest.fixture(scope="module", params=selected(["nginx"]))
def stack(request, binary, tmp_path_factory):
    config = e2e_config(PORT, workers=2)
    # One request a minute refills: over a test of a few seconds the burst is what counts.
    config["rate_limits"] = {"user_per_minute": 1, "user_burst": BURST, "tenant_per_minute": 0}
    cfg_path = tmp_path_factory.mktemp("processes") / "config.json"
    cfg_path.write_text(json.dumps(config))
    run_dir = Path(f"/tmp/mcp-fcgi-e2e-{PORT}")
    stack_cmd("down", "--run-dir", str(run_dir), "--port", str(PORT), timeout=120)
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh store: no counters left from an earlier run
    proc = stack_cmd("up", "--server", request.param, "--port", str(PORT), "--run-dir", str(run_dir),
                     "--binary", str(binary), "--config", str(cfg_path), "--processes", str(PROCESSES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = Stack(request.param, PORT, run_dir)
    try:
        yield s
    finally:
        stack_down(s)


def pids(stack) -> list[int]:
    return [int(p) for p in (stack.run_dir / "responder.pids").read_text().split()]


def write_calls(pid: int) -> int:
    """Write system calls so far: an idle responder (blocked in accept) makes none, one that
    answers makes several per request (CPU ticks are too coarse for a few dozen requests)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscw"])


def post(stack, token: str) -> httpx2.Response | None:
    try:
        return httpx2.post(f"{stack.base_url}/mcp", content=BODY, timeout=20.0, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
    except httpx2.TransportError:
        return None


def cli(stack, *args: str) -> str:
    done = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), *args, "--config", str(stack.run_dir / "config.json")],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout


def audit(stack) -> list[dict]:
    done = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), "audit", "tail", "--lines", "100000",
                           "--config", str(stack.run_dir / "config.json")],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_rate_limit_is_exact_across_processes_and_every_answer_is_audited(stack):
    assert len(pids(stack)) == PROCESSES and all(Path(f"/proc/{p}").exists() for p in pids(stack))
    token = mint_token(stack, "--oid", USER)
    before = {p: write_calls(p) for p in pids(stack)}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: post(stack, token), range(3 * BURST)))
    statuses = [r.status_code for r in replies if r is not None]
    assert len(statuses) == 3 * BURST
    assert statuses.count(200) == BURST, statuses
    assert statuses.count(429) == 2 * BURST
    limited = next(r for r in replies if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == -32004
    # More than one process did the work, so the count really was shared.
    busy = [p for p in pids(stack) if write_calls(p) > before[p]]
    assert len(busy) >= 2, (before, busy)

    records = {r["request_id"]: r for r in audit(stack) if r["user"] == USER}
    for r in replies:
        record = records[r.headers["x-request-id"]]
        assert record["http_status"] == r.status_code
        assert record["decision"] == ("allowed" if r.status_code == 200 else "denied")
    assert sum(1 for r in records.values() if r["reason"] == "rate limited") == 2 * BURST


def test_a_block_takes_effect_at_once_in_every_process(stack):
    token = mint_token(stack, "--oid", BLOCKED)
    # Concurrent warm-up, until every responder has served (and so loaded and cached the blocks).
    before = {p: write_calls(p) for p in pids(stack)}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        for _ in range(20):
            # 429 once this user's burst is spent (this stack's limit is tight): still served, still not blocked.
            assert all(r.status_code in (200, 429) for r in pool.map(lambda _: post(stack, token), range(16)))
            if all(write_calls(p) > before[p] for p in pids(stack)):
                break
    assert all(write_calls(p) > before[p] for p in pids(stack)), "every responder served before the block"
    cli(stack, "block", "--user", BLOCKED, "--reason", "e2e")
    try:
        before = {p: write_calls(p) for p in pids(stack)}
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda _: post(stack, token).status_code, range(64)))
        assert statuses == [403] * 64, statuses
        assert sum(1 for p in pids(stack) if write_calls(p) > before[p]) >= 2
    finally:
        cli(stack, "unblock", "--user", BLOCKED)
    assert post(stack, token).status_code in (200, 429)  # unblocked: the limit, not the block, decides again


def test_a_killed_responder_loses_no_record_of_what_it_answered(stack):
    token = mint_token(stack)
    victim = pids(stack)[0]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, stack, token) for _ in range(150)]
        # Kill it only once it is answering, so the claim is about requests it really served.
        served = write_calls(victim)
        deadline = time.monotonic() + 10
        while write_calls(victim) == served and time.monotonic() < deadline:
            time.sleep(0.005)
        assert write_calls(victim) > served, "the victim served before it was killed"
        os.kill(victim, signal.SIGKILL)
        replies = [f.result() for f in futures]
    answered = [r for r in replies if r is not None and "x-request-id" in r.headers]
    assert len(answered) >= 100, [None if r is None else r.status_code for r in replies]
    recorded = {r["request_id"] for r in audit(stack)}
    missing = [r.headers["x-request-id"] for r in answered if r.headers["x-request-id"] not in recorded]
    assert not missing, missing


def victim_journal_with_records(journal_dir, pid: int) -> bool:
    if not journal_dir.is_dir():
        return False
    for p in journal_dir.iterdir():
        if f"-{pid}-" in p.name:
            try:
                if p.stat().st_size > 0:
                    return True
            except FileNotFoundError:  # drained and deleted meanwhile
                pass
    return False


def test_a_killed_responders_journal_is_moved_into_the_store_by_the_living(stack):
    """The trail reads journals and store as one; this checks the store itself: a responder
    killed with records still in its journal leaves an orphan that a living responder's drain
    thread (or the next one to start) moves in and deletes."""
    import sqlite3
    token = mint_token(stack)
    victim = pids(stack)[1]
    journal_dir = stack.run_dir / "state" / "mcp-fcgi.db.audit-journal"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(post, stack, token) for _ in range(100)]
        # Killed the moment a journal of its own holds records (the directory and the file are
        # made on a process's first record). Not on its write calls: its drain thread's store
        # writes count too, and come after the journal it drained is gone.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not victim_journal_with_records(journal_dir, victim):
            time.sleep(0.001)
        os.kill(victim, signal.SIGKILL)
        left_behind = [p.name for p in journal_dir.iterdir() if f"-{victim}-" in p.name]
        replies = [f.result() for f in futures]
    assert left_behind
    answered = {r.headers["x-request-id"] for r in replies if r is not None and "x-request-id" in r.headers}
    assert len(answered) >= 50
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(f"-{victim}-" in p.name for p in journal_dir.iterdir()):
        time.sleep(0.2)
    assert not [p.name for p in journal_dir.iterdir() if f"-{victim}-" in p.name]
    # The living responders drain their own journals every 200 ms.
    deadline = time.monotonic() + 10
    missing = answered
    while missing and time.monotonic() < deadline:
        db = sqlite3.connect(f"file:{stack.run_dir / 'state' / 'mcp-fcgi.db'}?mode=ro", uri=True)
        stored = {row[0] for row in db.execute("SELECT request_id FROM audit")}
        db.close()
        missing = answered - stored
        time.sleep(0.2)
    assert not missing, sorted(missing)[:10]
    assert not (journal_dir / "torn").exists()
