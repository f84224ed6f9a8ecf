"""Opt-in legacy sessions behind Apache mod_fcgid, which runs several responder
processes: the official client in legacy mode gets an Mcp-Session-Id on initialize,
echoes it on every request (any process must accept it) and ends it with DELETE."""
from __future__ import annotations

import json
import subprocess

import anyio
import pytest

from conftest import BASE_PORT, e2e_config, selected, stack_down, stack_up
from mcp_http import Endpoint

PORT = BASE_PORT + 12


@pytest.fixture(scope="module", params=selected(["apache-fcgid"]))
def session_endpoint(request, binary, tmp_path_factory):
    config = e2e_config(PORT)
    config["sessions"] = {"enabled": True, "idle_minutes": 5}
    stack = stack_up(request.param, PORT, binary, tmp_path_factory.mktemp("sessions"), config)
    try:
        yield Endpoint(server=request.param, base_url=stack.base_url, mcp_path="/mcp", token=stack.token, stack=stack)
    finally:
        stack_down(stack)


def audit(endpoint: Endpoint) -> list[dict]:
    run_dir = endpoint.stack.run_dir
    done = subprocess.run([str(run_dir / "bin" / "mcp-fcgi"), "audit", "tail", "--lines", "1000",
                           "--config", str(run_dir / "config.json")],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_legacy_client_uses_and_ends_a_session(session_endpoint: Endpoint):
    async def scenario():
        async with session_endpoint.client("legacy") as client:
            for _ in range(5):
                tools = await client.list_tools()
                assert tools.tools
                result = await client.call_tool("whoami", {})
                assert not result.is_error

    anyio.run(scenario)
    records = audit(session_endpoint)
    ended = [r for r in records if r["method"] == "DELETE session"]
    assert ended and ended[-1]["http_status"] == 204, records[-3:]
    assert not [r for r in records if r["reason"] == "session not found"], "a process did not know the session"


def test_foreign_and_unknown_session_ids_are_not_found(session_endpoint: Endpoint):
    init = session_endpoint.legacy("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                                 "clientInfo": {"name": "e2e", "version": "0"}}, version=None)
    sid = init.headers.get("mcp-session-id")
    assert init.status == 200 and sid, init
    assert session_endpoint.legacy("ping", headers={"Mcp-Session-Id": sid}).status == 200
    assert session_endpoint.legacy("ping", headers={"Mcp-Session-Id": "0" * 64}).status == 404
    gone = session_endpoint.request("DELETE", "/mcp", headers={"Mcp-Session-Id": sid})
    assert gone.status == 204, gone
    assert session_endpoint.legacy("ping", headers={"Mcp-Session-Id": sid}).status == 404
