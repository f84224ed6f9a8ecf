"""Per-client instances behind one web server and one responder: each instance has its
own path, app registration (audience), tenants and store; a token for one is refused by
the other. Instance b also trusts an authenticating proxy at 127.0.0.1 (the test client,
as nginx reports it in REMOTE_ADDR); instance a trusts a proxy elsewhere, so the same
identity headers sent to it are stripped and the request is unauthenticated."""
from __future__ import annotations

import copy
import json
import socket
import subprocess

import anyio
import pytest

from conftest import BASE_PORT, e2e_config, mint_token, selected, stack_down, stack_up
from mcp_http import Endpoint

PORT = BASE_PORT + 14
TENANT_A = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
TENANT_B = "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
USER = "33333333-3333-4333-8333-333333333333"
PROXY_HEADERS = {"X-Authenticated-User-Oid": USER, "X-Authenticated-Roles": "MCP.User"}


def instances_config(port: int) -> dict:
    base = e2e_config(port)
    auth = base.pop("auth")
    base.pop("origins")
    instances = {}
    for name, tenant, proxy in (("client-a", TENANT_A, "10.99.0.0/16"), ("client-b", TENANT_B, "127.0.0.1")):
        url = f"http://127.0.0.1:{port}/{name}/mcp"
        a = copy.deepcopy(auth)
        a.update({"tenant_id": tenant, "client_id": f"api://{name}", "audiences": [url]})
        instances[name] = {
            "server": {"mcp_path": f"/{name}/mcp", "public_url": url},
            "origins": {"allowed": [f"http://127.0.0.1:{port}"]},
            "auth": a,
            "tenants": {tenant: {"name": f"Organisation {name[-1].upper()}"}},
            "trusted_proxy": {"enabled": True, "sources": [proxy], "default_tenant": tenant, "assert_roles": True},
        }
    base["instances"] = instances
    return base


@pytest.fixture(scope="module", params=selected(["nginx", "apache-proxy"]))
def stack(request, binary, tmp_path_factory):
    s = stack_up(request.param, PORT, binary, tmp_path_factory.mktemp("instances"), instances_config(PORT),
                 mcp_path="/client-a/mcp", mint=False)
    try:
        yield s
    finally:
        stack_down(s)


def endpoint(stack, name: str, token: str | None) -> Endpoint:
    return Endpoint(server=stack.server, base_url=stack.base_url, mcp_path=f"/{name}/mcp", token=token, stack=stack)


def audit(stack, instance: str) -> list[dict]:
    done = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), "audit", "tail", "--lines", "1000",
                           "--instance", instance, "--config", str(stack.run_dir / "config.json")],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_each_instance_serves_its_own_clients(stack):
    token_a = mint_token(stack, "--instance", "client-a", "--oid", USER)
    a = endpoint(stack, "client-a", token_a)

    async def scenario():
        async with a.client("auto") as client:
            result = await client.call_tool("whoami", {})
            assert not result.is_error
            return result.structured_content

    me = anyio.run(scenario)
    assert me["instance"] == "client-a"
    assert me["tenantId"] == TENANT_A
    assert me["tenant_name"] == "Organisation A"

    # The same token at the other instance: wrong audience and tenant, refused with a challenge
    # that points at b's own metadata.
    refused = endpoint(stack, "client-b", token_a).legacy("tools/list")
    assert refused.status == 401
    assert f"/.well-known/oauth-protected-resource/client-b/mcp" in refused.headers["www-authenticate"]
    meta = endpoint(stack, "client-b", None).request("GET", "/.well-known/oauth-protected-resource/client-b/mcp")
    assert meta.status == 200 and meta.json["resource"] == f"http://127.0.0.1:{PORT}/client-b/mcp"

    records_a = audit(stack, "client-a")
    records_b = audit(stack, "client-b")
    assert records_a and all(r["instance"] == "client-a" for r in records_a)
    assert any(r["tool"] == "whoami" and r["decision"] == "allowed" for r in records_a)
    assert records_b[-1]["instance"] == "client-b" and records_b[-1]["decision"] == "denied"
    assert not any(r["user"] == USER and r["decision"] == "allowed" for r in records_b)


def test_identity_asserted_by_a_trusted_proxy(stack):
    reply = endpoint(stack, "client-b", None).legacy("tools/call", {"name": "whoami", "arguments": {}},
                                                    headers=PROXY_HEADERS)
    assert reply.status == 200, reply
    me = reply.json["result"]["structuredContent"]
    assert me["objectId"] == USER and me["tenantId"] == TENANT_B and me["issuer"] == "trusted-proxy"
    assert me["permissions"] == ["user"]


def test_identity_headers_from_an_untrusted_peer_are_ignored(stack):
    reply = endpoint(stack, "client-a", None).legacy("tools/call", {"name": "whoami", "arguments": {}},
                                                    headers=PROXY_HEADERS)
    assert reply.status == 401
    assert "www-authenticate" in reply.headers


def test_the_tenant_header_is_ignored_with_a_default_tenant(stack):
    reply = endpoint(stack, "client-b", None).legacy("tools/call", {"name": "whoami", "arguments": {}},
                                                    headers={**PROXY_HEADERS, "X-Authenticated-Tenant-Id": TENANT_A})
    assert reply.status == 200, reply
    assert reply.json["result"]["structuredContent"]["tenantId"] == TENANT_B


def test_a_roles_header_sent_twice_is_refused(stack):
    """The web server joins the client's copy and the proxy's into one value with ", "."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "whoami", "arguments": {}}}).encode()
    head = (f"POST /client-b/mcp HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Type: application/json\r\n"
            "Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n"
            f"X-Authenticated-User-Oid: {USER}\r\nX-Authenticated-Roles: MCP.Admin\r\nX-Authenticated-Roles: MCP.User\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", PORT), timeout=10) as s:
        s.sendall(head.encode() + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"403", answer
    assert b"invalid_identity" in rest and b"x-authenticated-roles was sent more than once" in rest, answer
