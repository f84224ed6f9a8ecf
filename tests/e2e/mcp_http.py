"""Small helpers for talking to an mcp-fcgi endpoint: raw JSON-RPC over HTTP, and the
official Python MCP client. Every request built here carries the bearer token of its
Endpoint, which comes from conftest.bearer_token_for() (the one place for auth)."""
from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx2

MODERN_VERSION = "2026-07-28"
LEGACY_VERSIONS = ["2025-03-26", "2025-06-18", "2025-11-25"]
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPS = "io.modelcontextprotocol/clientCapabilities"
META_INFO = "io.modelcontextprotocol/clientInfo"
ACCEPT_BOTH = "application/json, text/event-stream"
DEFAULT_TIMEOUT = httpx2.Timeout(30.0)


def b64_header(value: str) -> str:
    """The `=?base64?…?=` form of a header value (used for non-ASCII Mcp-Name values)."""
    return "=?base64?" + base64.b64encode(value.encode()).decode() + "?="


def modern_meta(version: str = MODERN_VERSION, capabilities: bool = True) -> dict:
    meta: dict[str, Any] = {META_VERSION: version, META_INFO: {"name": "mcp-fcgi-e2e", "version": "0"}}
    if capabilities:
        meta[META_CAPS] = {}
    return meta


@dataclass
class Reply:
    """An HTTP answer, decoded once."""
    status: int
    headers: httpx2.Headers
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict:
        doc = self.json
        assert "error" in doc, f"expected a JSON-RPC error, got {doc}"
        return doc["error"]

    @property
    def result(self) -> dict:
        doc = self.json
        assert "result" in doc, f"expected a JSON-RPC result, got {doc}"
        return doc["result"]

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.body[:300]!r})"


@dataclass
class Endpoint:
    server: str
    base_url: str
    mcp_path: str
    token: str | None = None
    stack: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.base_url + self.mcp_path

    # ---- headers: the token is added here and in client() only

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str | None] | None = None, timeout: httpx2.Timeout = DEFAULT_TIMEOUT) -> Reply:
        """One HTTP request. A header given as None is left out entirely."""
        merged: dict[str, str | None] = {**self.auth_headers(), **(headers or {})}
        with httpx2.Client(timeout=timeout) as client:
            req = client.build_request(method, self.base_url + path, content=body)
            for name, value in merged.items():
                if value is None:
                    req.headers.pop(name, None)
                else:
                    req.headers[name] = value
            resp = client.send(req)
            return Reply(resp.status_code, resp.headers, resp.read())

    def post(self, message: Any, headers: dict[str, str | None] | None = None, *, raw: bytes | None = None) -> Reply:
        """POST one JSON-RPC message (or raw bytes) to the MCP endpoint with the usual headers."""
        body = raw if raw is not None else json.dumps(message).encode()
        base = {"Content-Type": "application/json", "Accept": ACCEPT_BOTH}
        return self.request("POST", self.mcp_path, body=body, headers={**base, **(headers or {})})

    # ---- modern era (2026-07-28): _meta + mirrored headers

    def modern(self, method: str, params: dict | None = None, *, id: Any = 1,
               version: str = MODERN_VERSION, capabilities: bool = True,
               headers: dict[str, str | None] | None = None) -> Reply:
        """A well-formed modern request; `headers` overrides (None removes) the mirrored ones."""
        p = dict(params or {})
        p["_meta"] = modern_meta(version, capabilities)
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": p}
        if id is not None:
            msg["id"] = id
        h: dict[str, str | None] = {"MCP-Protocol-Version": version, "Mcp-Method": method}
        if method == "tools/call" and "name" in p:
            h["Mcp-Name"] = p["name"]
        h.update(headers or {})
        return self.post(msg, h)

    # ---- legacy era: plain JSON-RPC, optional MCP-Protocol-Version header

    def legacy(self, method: str, params: dict | None = None, *, id: Any = 1,
               version: str | None = "2025-11-25", headers: dict[str, str | None] | None = None) -> Reply:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if id is not None:
            msg["id"] = id
        h: dict[str, str | None] = {}
        if version is not None:
            h["MCP-Protocol-Version"] = version
        h.update(headers or {})
        return self.post(msg, h)

    # ---- the official Python client

    @asynccontextmanager
    async def client(self, mode: str = "auto") -> AsyncIterator[Any]:
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client

        async with httpx2.AsyncClient(headers=self.auth_headers(),
                                      timeout=httpx2.Timeout(30.0, read=60.0)) as http_client:
            transport = streamable_http_client(self.url, http_client=http_client)
            # cache=None: every call must reach the server (we are testing the server).
            async with Client(transport, mode=mode, cache=None) as client:
                yield client
