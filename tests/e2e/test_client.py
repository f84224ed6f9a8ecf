"""The official Python MCP client (PyPI `mcp` 2.3.x) against each web server, in all
three connection modes: auto (server/discover probe), legacy (initialize handshake) and
pinned 2026-07-28 (no probe)."""
from __future__ import annotations

import json

import anyio
import pytest
from mcp.types import TextContent

from mcp_http import LEGACY_VERSIONS, MODERN_VERSION, Endpoint

MODES = ["auto", "legacy", MODERN_VERSION]
EXPECTED_VERSION = {"auto": MODERN_VERSION, "legacy": "2025-11-25", MODERN_VERSION: MODERN_VERSION}


async def list_all_tools(client) -> tuple[list, int]:
    """Follows nextCursor to the end; returns the tools and the number of pages."""
    tools, cursor, pages = [], None, 0
    while True:
        page = await client.list_tools(cursor=cursor)
        pages += 1
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools, pages
        assert pages < 100, "pagination does not terminate"


def text_json(result) -> object:
    texts = [b.text for b in result.content if isinstance(b, TextContent)]
    assert texts, f"no text block in {result.content}"
    return json.loads(texts[0])


def check_tool_result(result, name: str) -> dict:
    assert not result.is_error, f"{name} failed: {result.content}"
    assert result.structured_content is not None, f"{name} has no structuredContent"
    assert text_json(result) == result.structured_content, "text block must carry the same JSON"
    return result.structured_content


@pytest.mark.parametrize("mode", MODES)
def test_client_lists_and_calls_tools(endpoint: Endpoint, mode: str):
    async def scenario():
        async with endpoint.client(mode) as client:
            assert client.protocol_version == EXPECTED_VERSION[mode]

            tools, pages = await list_all_tools(client)
            names = [t.name for t in tools]
            assert {"whoami", "server_info"} <= set(names), names
            assert len(names) == len(set(names)), f"a tool repeats across pages: {names}"
            if mode == "legacy":
                # tools_page_size is 1 in the test config: one page per tool.
                assert pages == len(names), f"{len(names)} tools came in {pages} pages"
            for tool in tools:
                assert tool.input_schema.get("type") == "object", tool

            who = check_tool_result(await client.call_tool("whoami", {}), "whoami")
            assert who.get("authenticated") is True, f"the token did not reach the app: {who}"

            info = check_tool_result(await client.call_tool("server_info", {}), "server_info")
            dumped = json.dumps(info)
            assert "mcp-fcgi-e2e" in dumped, f"server name from the config missing in {info}"
            for version in [MODERN_VERSION, *LEGACY_VERSIONS]:
                assert version in dumped, f"{version} missing from server_info {info}"

    anyio.run(scenario)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_client_unknown_tool_raises(endpoint: Endpoint, mode: str):
    from mcp import MCPError

    async def scenario():
        async with endpoint.client(mode) as client:
            with pytest.raises(MCPError) as info:
                await client.call_tool("no_such_tool", {})
            assert info.value.error.code == -32602

    anyio.run(scenario)
