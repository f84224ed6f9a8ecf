"""The measurement behind bench/powerbi-overhead (see there)."""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests" / "fakes"))
from conftest import DEV_CLIENT_ID, DEV_TENANT, e2e_config, mint_token, stack_down, stack_up  # noqa: E402
from fake_entra import EntraBehaviour, TokenRegistry, start_entra  # noqa: E402
from fake_powerbi import Dataset, PowerBIModel, Workspace, start_powerbi  # noqa: E402

GATEWAY_APP = "9a9a9a9a-0000-4000-8000-0000000000a9"
USER = "a11ce000-0000-4000-8000-000000000001"
WS = "5a1e5000-0000-4000-8000-0000000000a1"
DS = "d5a1e500-0000-4000-8000-0000000000d1"
RESOURCE = "https://analysis.windows.net/powerbi/api"
QUERY = "EVALUATE SUMMARIZECOLUMNS(Sales[Region], \"Total\", [Total])"


def timed(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict) -> tuple[float, int, bytes]:
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return time.perf_counter() - start, resp.status, data


def wrk_ms(text: str) -> float:
    """wrk's latency ("850.00us", "1.17ms", "1.02s") in milliseconds."""
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def wrk_row(url: str, body: bytes, headers: dict, seconds: int, workdir: Path) -> dict:
    """16 connections of POSTs for `seconds`: requests/s, p50, p99 (ms), non-2xx."""
    lua = workdir / f"wrk-{abs(hash(url))}.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    lua.write_text("\n".join(lines) + "\n")
    out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-s", str(lua), url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    p50 = wrk_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = wrk_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": int(bad.group(1)) if bad else 0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--binary", default=str(REPO / ".build-e2e" / "release" / "mcp-fcgi"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("E2E_BASE_PORT", "20000")) + 30)
    ap.add_argument("--wrk-seconds", type=int, default=0,
                    help="also load both paths with wrk (16 connections) for this long each; 0: off")
    args = ap.parse_args()

    registry = TokenRegistry()
    secret = os.urandom(16).hex()
    behaviour = EntraBehaviour(client_id=GATEWAY_APP, client_secret=secret, resource=RESOURCE,
                               gateway_audiences=[DEV_CLIENT_ID])
    model = PowerBIModel(resource=RESOURCE)
    ws = model.add(Workspace(WS, "Sales", DEV_TENANT, members={USER: "Admin"}))
    ws.datasets[DS] = Dataset(DS, "Sales", rows=[{"Sales[Region]": r, "[Total]": i * 10.5} for i, r in enumerate(["North", "South", "East", "West"] * 5)])
    entra, pbi = start_entra(behaviour, registry), start_powerbi(model, registry)
    pbi_port = pbi.server_address[1]

    cfg = e2e_config(args.port)
    cfg["logging"] = {"level": "info"}
    cfg["credential"] = {"client_id": GATEWAY_APP, "client_secret_env": "PBI_BENCH_CLIENT_SECRET",
                         "authority": f"http://127.0.0.1:{entra.server_address[1]}", "allow_insecure_http_for_testing": True}
    cfg["powerbi"] = {"api_base": f"http://127.0.0.1:{pbi_port}/v1.0/myorg", "allow_insecure_http_for_testing": True}
    os.environ["PBI_BENCH_CLIENT_SECRET"] = secret
    stack = stack_up("nginx", args.port, Path(args.binary), Path(tempfile.mkdtemp(prefix="pbi-bench-")), cfg, mint=False)
    try:
        token = mint_token(stack, "--oid", USER, "--roles", "MCP.User", "--scopes", "mcp.tools")
        call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "execute_dax_query", "arguments": {"workspace_id": WS, "dataset_id": DS, "query": QUERY}}}).encode()
        gw_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                      "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        gw = http.client.HTTPConnection("127.0.0.1", args.port)
        # The upstream token the gateway holds (same claims, issued by the same fake Entra).
        direct_token = registry.issue({"aud": RESOURCE, "tid": DEV_TENANT, "oid": USER, "exp": time.time() + 3600})
        direct_body = json.dumps({"queries": [{"query": QUERY}], "serializerSettings": {"includeNulls": False}}).encode()
        direct_headers = {"Authorization": f"Bearer {direct_token}", "Content-Type": "application/json",
                          "Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        direct = http.client.HTTPConnection("127.0.0.1", pbi_port)
        direct_path = f"/v1.0/myorg/groups/{WS}/datasets/{DS}/executeQueries"

        # Warm up both paths (token broker cache, curl connections, nginx, page cache).
        for _ in range(50):
            _, status, data = timed(gw, "/mcp", call, gw_headers)
            assert status == 200 and b'"isError":false' in data, data[:300]
            _, status, _ = timed(direct, direct_path, direct_body, direct_headers)
            assert status == 200
        gateway_times, direct_times = [], []
        # Interleaved, so both see the same machine load.
        for _ in range(args.calls):
            gateway_times.append(timed(gw, "/mcp", call, gw_headers)[0])
            direct_times.append(timed(direct, direct_path, direct_body, direct_headers)[0])
        obo = behaviour.counts["obo"]
        loaded = {}
        if args.wrk_seconds > 0 and shutil.which("wrk"):
            workdir = Path(tempfile.mkdtemp(prefix="pbi-wrk-"))
            loaded = {"gateway": wrk_row(f"http://127.0.0.1:{args.port}/mcp", call, gw_headers, args.wrk_seconds, workdir),
                      "direct": wrk_row(f"http://127.0.0.1:{pbi_port}{direct_path}", direct_body, direct_headers,
                                        args.wrk_seconds, workdir)}
            shutil.rmtree(workdir, ignore_errors=True)
    finally:
        stack_down(stack)
        entra.shutdown()
        pbi.shutdown()

    def ms(xs: list[float], q: float) -> float:
        return round(sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1000, 3)

    g50, d50 = round(statistics.median(gateway_times) * 1000, 3), round(statistics.median(direct_times) * 1000, 3)
    print(f"execute_dax_query through nginx + mcp-fcgi: median {g50} ms, p90 {ms(gateway_times, 0.9)} ms", file=sys.stderr)
    print(f"executeQueries directly at the fake API:    median {d50} ms, p90 {ms(direct_times, 0.9)} ms", file=sys.stderr)
    print(f"gateway overhead at the median: {round(g50 - d50, 3)} ms over {args.calls} calls; OBO exchanges: {obo}", file=sys.stderr)
    print(json.dumps({"calls": args.calls, "gateway_median_ms": g50, "direct_median_ms": d50,
                      "overhead_median_ms": round(g50 - d50, 3), "gateway_p90_ms": ms(gateway_times, 0.9),
                      "direct_p90_ms": ms(direct_times, 0.9), "obo_exchanges": obo, "wrk": loaded}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
