"""mod_fcgid's process pool under concurrent load, on a stack of its own.

mod_fcgid guards its process table with a cross-process lock. As fcntl(2) record locks (what
Debian's `Mutex file:... default` makes them) the kernel's per-process deadlock check refuses
waits under a threaded MPM now and then with EDEADLK; mod_fcgid then exits the whole Apache
child, cuts every connection it held and leaks the processes its requests had taken, so later
requests sleep a second for a process. apache/mcp-fcgi-fcgid-server.conf makes both of
mod_fcgid's locks flock(2) locks; these tests hold it to that under load.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import BASE_PORT, e2e_config, selected, stack_down, stack_up

PORT = BASE_PORT + 70
WARM_CONNECTIONS = 32  # the snippet's FcgidMaxProcessesPerClass
CONNECTIONS = 16       # its FcgidMinProcessesPerClass
LOAD_SECONDS = 8

pytestmark = pytest.mark.skipif(not selected(["apache-fcgid"]), reason="apache-fcgid not selected")

WHOAMI = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
          "params": {"name": "whoami", "arguments": {},
                     "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                               "io.modelcontextprotocol/clientCapabilities": {}}}}


@pytest.fixture(scope="module")
def fcgid_stack(binary, tmp_path_factory):
    config = e2e_config(PORT)
    config["logging"] = {"level": "info"}
    stack = stack_up("apache-fcgid", PORT, binary, tmp_path_factory.mktemp("fcgid-pool"), config)
    yield stack
    stack_down(stack)


def test_both_mod_fcgid_locks_are_flock_locks(fcgid_stack):
    dump = subprocess.run(["apache2", "-f", str(fcgid_stack.run_dir / "httpd.conf"), "-t", "-D", "DUMP_RUN_CFG"],
                          capture_output=True, text=True, timeout=30)
    assert dump.returncode == 0, dump.stderr
    mechanisms = dict(re.findall(r"^Mutex (fcgid-\w+): .*mechanism=(\w+)", dump.stdout, re.M))
    assert mechanisms == {"fcgid-proctbl": "flock", "fcgid-pipe": "flock"}, dump.stdout


def wrk_script(path, token: str):
    path.write_text("\n".join([
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(json.dumps(WHOAMI))}",
        'wrk.headers["Content-Type"] = "application/json"',
        'wrk.headers["Accept"] = "application/json, text/event-stream"',
        'wrk.headers["MCP-Protocol-Version"] = "2026-07-28"',
        'wrk.headers["Mcp-Method"] = "tools/call"',
        'wrk.headers["Mcp-Name"] = "whoami"',
        f'wrk.headers["Authorization"] = "Bearer {token}"',
    ]) + "\n")
    return path


def run_wrk(stack, script, connections: int, seconds: int) -> str:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is missing (scripts/deps installs it)"
    out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), f"{stack.base_url}/mcp"],
                         capture_output=True, text=True, timeout=seconds + 60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def seconds_of(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def pool_size(stack) -> int:
    found = subprocess.run(["pgrep", "-fc", f"^{stack.run_dir}/bin/mcp-fcgi"], capture_output=True, text=True)
    return int(found.stdout.strip() or 0)


def test_steady_load_after_warm_up_never_waits_for_a_process(fcgid_stack, tmp_path):
    """A pool grown above the load's concurrency serves it without one of mod_fcgid's
    one-second waits, without a cut connection, and without an Apache child leaving."""
    script = wrk_script(tmp_path / "whoami.lua", fcgid_stack.token)
    # Grow the pool as bench/run does: short rounds of fresh connections above the row's 16.
    for _ in range(10):
        if pool_size(fcgid_stack) >= 20:
            break
        run_wrk(fcgid_stack, script, WARM_CONNECTIONS, 3)
    assert pool_size(fcgid_stack) >= 20
    out = run_wrk(fcgid_stack, script, CONNECTIONS, LOAD_SECONDS)
    error_log = (fcgid_stack.run_dir / "logs" / "apache-error.log").read_text(errors="replace")
    # The lock failure exits an Apache child; wrk counts its cut connections as socket errors.
    assert "can't lock process table" not in error_log, error_log[-4000:]
    assert "Socket errors" not in out, out
    assert "Non-2xx" not in out, out
    assert int(re.search(r"(\d+) requests in", out).group(1)) > 1000, out
    slowest = seconds_of(re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1))
    assert slowest < 1.0, out
