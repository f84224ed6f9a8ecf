"""Apache + plain CGI (the shared-host fallback): one process per request, so a smaller
smoke set that proves the CGI path works end to end."""
from __future__ import annotations

import json

import anyio
import pytest

from mcp_http import Endpoint
from test_client import check_tool_result, list_all_tools


def test_cgi_health(cgi_endpoint: Endpoint):
    reply = cgi_endpoint.request("GET", "/health")
    assert reply.status == 200, reply
    assert reply.json["status"] == "ok"


def test_cgi_status_rules(cgi_endpoint: Endpoint):
    get = cgi_endpoint.request("GET", "/mcp")
    assert get.status == 405 and get.headers.get("allow") == "POST", get
    assert cgi_endpoint.request("GET", "/nope").status == 404
    bad = cgi_endpoint.post(None, raw=b"{not json")
    assert bad.status == 400 and bad.json["error"]["code"] == -32700, bad
    note = cgi_endpoint.legacy("notifications/initialized", id=None, version=None)
    assert note.status == 202 and note.body == b"", note
    modern = cgi_endpoint.modern("tools/list", headers={"Mcp-Method": "tools/call"})
    assert modern.status == 400 and modern.json["error"]["code"] == -32020, modern


def test_cgi_auth(cgi_endpoint: Endpoint):
    anonymous = cgi_endpoint.legacy("tools/list", {}, headers={"Authorization": None})
    assert anonymous.status == 401 and anonymous.headers.get("www-authenticate", "").startswith("Bearer"), anonymous
    who = cgi_endpoint.legacy("tools/call", {"name": "whoami", "arguments": {}})
    assert who.status == 200 and who.result["structuredContent"]["authenticated"] is True, who
    meta = cgi_endpoint.request("GET", "/.well-known/oauth-protected-resource/mcp")
    assert meta.status == 200 and meta.json["resource"] == cgi_endpoint.url, meta


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_cgi_client(cgi_endpoint: Endpoint, mode: str):
    async def scenario():
        async with cgi_endpoint.client(mode) as client:
            tools, _ = await list_all_tools(client)
            assert {"whoami", "server_info"} <= {t.name for t in tools}
            check_tool_result(await client.call_tool("whoami", {}), "whoami")
            info = check_tool_result(await client.call_tool("server_info", {}), "server_info")
            assert "mcp-fcgi-e2e" in json.dumps(info)

    anyio.run(scenario)
