#!/usr/bin/env python3
"""bench/postgres-cost (this file, run through it): what a request costs on the PostgreSQL engine next to SQLite.

    bench/postgres-cost [--seconds N] [--base-port P]     (MCP_FCGI_BINARY overrides the release binary)

Starts a throwaway PostgreSQL (Debian's binaries, initdb in a temporary directory, unix socket),
brings up the release binary behind nginx twice through scripts/stack (store.engine "sqlite",
then "postgres"; rate limits counting, audit trail on), runs `wrk -t1 -c16` with `tools/call
whoami` on each, and counts the server's committed transactions (pg_stat_database.xact_commit)
per answered request: each autocommitted statement is one round trip, an audit batch moved from
the journals one transaction. Prints markdown rows for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import e2e_config, mint_token, stack_down, stack_up  # noqa: E402
from test_postgres import Postgres  # noqa: E402

BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "whoami", "arguments": {},
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}})


def wrk(url: str, token: str, seconds: int, work: Path) -> dict:
    script = work / "whoami.lua"
    script.write_text(f"""wrk.method = "POST"
wrk.body = '{BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "whoami"
wrk.headers["Authorization"] = "Bearer {token}"
""")
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\b", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": ms("50%"), "p99": ms("99%"),
            "requests": total, "non2xx": int(non2xx.group(1)) if non2xx else 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--base-port", type=int, default=22080)
    args = ap.parse_args()
    binary = Path(os.environ.get("MCP_FCGI_BINARY", REPO / ".build-e2e" / "release" / "mcp-fcgi"))
    work = Path(tempfile.mkdtemp(prefix="mcp-pg-bench-"))
    pg = Postgres()
    rows = []
    try:
        for i, engine in enumerate(["sqlite", "postgres"]):
            port = args.base_port + i
            config = e2e_config(port)
            config["logging"] = {"level": "info"}
            config["rate_limits"] = {"user_per_minute": 1_000_000, "user_burst": 1_000_000, "tenant_per_minute": 0}
            if engine == "postgres":
                config["store"] = {"engine": "postgres", "url": pg.url}
            stack = stack_up("nginx", port, binary, work, config)
            try:
                token = mint_token(stack)
                wrk(f"{stack.base_url}/mcp", token, 1, work)  # warm-up: connections, token cache
                before = int(pg.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'mcp'"))
                result = wrk(f"{stack.base_url}/mcp", token, args.seconds, work)
            finally:
                stack_down(stack)  # the journals are moved in at exit: every batch is counted
            time.sleep(2)  # backends publish their statistics within a second, and at exit
            commits = int(pg.psql("SELECT xact_commit FROM pg_stat_database WHERE datname = 'mcp'")) - before
            per_request = f"{commits / result['requests']:.2f}" if engine == "postgres" else "0"
            rows.append(f"| `tools/call whoami`, rate limits counting, store.engine \"{engine}\" | {result['rps']:.2f} | "
                        f"{result['p50']:.3f} | {result['p99']:.3f} | {result['non2xx']} | {per_request} |")
    finally:
        pg.close()
        shutil.rmtree(work, ignore_errors=True)
    print("| request | requests/s | p50 | p99 | non-2xx | PostgreSQL commits per request |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
