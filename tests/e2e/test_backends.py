"""Declarative backend tools end to end: the official MCP client -> nginx (and Apache
mod_fcgid with several processes) -> mcp-fcgi -> fake Entra token endpoint + a fake
SimpleChat-like backend (tests/fakes). Every user signs in to the backend as themselves
with an On-Behalf-Of token; their session cookie lives sealed in the shared store."""
from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp.types import TextContent

from conftest import (BASE_PORT, DEV_CLIENT_ID, DEV_TENANT, e2e_config, mint_token, private_file, selected, stack_down,
                      stack_up)
from mcp_http import Endpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from fake_backend import BackendModel, start_backend  # noqa: E402
from fake_entra import EntraBehaviour, TokenRegistry, start_entra  # noqa: E402

NGINX_PORT = BASE_PORT + 30
FCGID_PORT = BASE_PORT + 31
GATEWAY_APP = "9a9a9a9a-0000-4000-8000-0000000000b7"
SECRET = "e2e-backend-Secret~that-must-never-be-logged"
API_KEY = "e2e-api-key-that-must-never-be-logged"
RESOURCE = "api://fake-simplechat"
TIMEOUT_SECONDS = 3

ALICE = "a11ce000-0000-4000-8000-0000000000b1"
BOB = "b0b00000-0000-4000-8000-0000000000b2"
CAROL = "ca401000-0000-4000-8000-0000000000b3"
DAVE = "da7e0000-0000-4000-8000-0000000000b4"
ERIN = "e4140000-0000-4000-8000-0000000000b5"
FRANK = "f4a4c000-0000-4000-8000-0000000000b6"


@pytest.fixture(scope="module")
def fakes():
    registry = TokenRegistry()
    behaviour = EntraBehaviour(client_id=GATEWAY_APP, client_secret=SECRET, resource=RESOURCE,
                               gateway_audiences=[DEV_CLIENT_ID, f"http://127.0.0.1:{NGINX_PORT}/mcp",
                                                  f"http://127.0.0.1:{FCGID_PORT}/mcp"])
    model = BackendModel(registry=registry, resource=RESOURCE, api_key=API_KEY, slow_seconds=TIMEOUT_SECONDS + 3)
    for user in (ALICE, BOB, CAROL, DAVE, ERIN, FRANK):
        model.conversations[user] = [{"id": f"conv-{user[:4]}-{i}", "title": f"{user[:4]} talk {i}", "owner": user} for i in range(3)]
    entra = start_entra(behaviour, registry)
    backend = start_backend(model)
    ca_bundle, tls = internal_ca()
    tls_backend = start_backend(model, tls=tls)
    yield behaviour, model, entra.server_address[1], backend.server_address[1], registry, tls_backend.server_address[1], ca_bundle
    entra.shutdown()
    backend.shutdown()
    tls_backend.shutdown()


def internal_ca() -> tuple[str, ssl.SSLContext]:
    """A private CA and a certificate it issued for 127.0.0.1, as an internal backend would have.
    Returns the CA bundle (readable by the responder's user) and the server's TLS context."""
    d = Path(f"/tmp/mcp-fcgi-e2e-backends-{NGINX_PORT}-ca")
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o755, parents=True)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    for args in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                  "-subj", "/CN=mcp-fcgi e2e internal CA", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                 ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
                 ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                  "-out", "server.pem", "-days", "2", "-extfile", "server.ext"]):
        done = subprocess.run(["openssl", *args], cwd=d, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    os.chmod(d / "ca.pem", 0o644)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "server.pem", d / "server.key")
    return str(d / "ca.pem"), context


def closed_port() -> int:
    """A loopback port nothing listens on: a backend that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def backend_config(port: int, entra_port: int, backend_port: int, tls_port: int, ca_bundle: str) -> dict:
    secrets_dir = Path(f"/tmp/mcp-fcgi-e2e-backends-{port}-secrets")
    shutil.rmtree(secrets_dir, ignore_errors=True)
    cfg = e2e_config(port)
    cfg["authorization"] = {"roles": {"MCP.User": ["user", "chat"], "MCP.Admin": ["user", "chat", "admin"]}}
    cfg["credential"] = {"client_id": GATEWAY_APP, "client_secret_file": private_file(secrets_dir, "client-secret", SECRET),
                         "authority": f"http://127.0.0.1:{entra_port}", "allow_insecure_http_for_testing": True}
    base = f"http://127.0.0.1:{backend_port}"
    common = {"allow_insecure_http_for_testing": True, "timeout_seconds": TIMEOUT_SECONDS, "permission": "chat"}
    cfg["backends"] = {
        "simplechat": {
            **common, "base_url": base, "auth_mode": "session", "scope": f"{RESOURCE}/.default",
            "user_info_id_field": "user_id", "session_check_seconds": 2,
            "tools": [
                {"name": "get_conversations", "description": "Your SimpleChat conversations.", "method": "GET",
                 "path": "/api/conversations", "query": ["limit"],
                 "input_schema": {"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 100}}}},
                {"name": "get_user_info", "description": "Who SimpleChat thinks you are.", "method": "GET", "path": "/api/user_info"},
                {"name": "get_conversation", "description": "One conversation.", "method": "GET",
                 "path": "/api/conversations/{conversation_id}",
                 "input_schema": {"type": "object", "properties": {"conversation_id": {"type": "string", "maxLength": 200}},
                                  "required": ["conversation_id"]}},
                {"name": "slow_report", "description": "A report that takes long.", "method": "GET", "path": "/api/slow"},
            ],
        },
        "chatapi": {
            **common, "base_url": base, "auth_mode": "token", "scope": f"{RESOURCE}/.default",
            "tools": [{"name": "get_profile", "description": "Your profile (token route).", "method": "GET", "path": "/api/v1/profile"}],
        },
        "chathybrid": {
            **common, "base_url": base, "auth_mode": "hybrid", "scope": f"{RESOURCE}/.default", "user_info_id_field": "user_id",
            "tools": [
                {"name": "hybrid_conversations", "description": "Conversations (web route).", "method": "GET",
                 "path": "/api/conversations", "route": "web"},
                {"name": "hybrid_profile", "description": "Profile (API route).", "method": "GET", "path": "/api/v1/profile", "route": "api"},
            ],
        },
        "chatservice": {
            **common, "base_url": base, "auth_mode": "api-key", "api_key_file": private_file(secrets_dir, "api-key", API_KEY),
            "tools": [{"name": "service_status", "description": "Service status.", "method": "GET", "path": "/api/service/status"}],
        },
        "internal": {
            **common, "base_url": f"https://127.0.0.1:{tls_port}", "auth_mode": "api-key", "ca_bundle": ca_bundle,
            "api_key_file": private_file(secrets_dir, "api-key", API_KEY),
            "tools": [{"name": "internal_status", "description": "An internal backend with its own CA.", "method": "GET",
                       "path": "/api/service/status"}],
        },
        "untrusted": {
            **common, "base_url": f"https://127.0.0.1:{tls_port}", "auth_mode": "api-key",
            "api_key_file": private_file(secrets_dir, "api-key", API_KEY),
            "tools": [{"name": "untrusted_status", "description": "The same backend without its CA.", "method": "GET",
                       "path": "/api/service/status"}],
        },
        "offline": {
            **common, "base_url": f"http://127.0.0.1:{closed_port()}", "auth_mode": "api-key",
            "api_key_file": private_file(secrets_dir, "api-key", API_KEY),
            "tools": [{"name": "offline_status", "description": "A backend that is down.", "method": "GET", "path": "/api/service/status"}],
        },
    }
    return cfg


def make_stack(server: str, port: int, fakes, binary, tmp_path_factory):
    _, _, entra_port, backend_port, _, tls_port, ca_bundle = fakes
    return stack_up(server, port, binary, tmp_path_factory.mktemp("backends"),
                    backend_config(port, entra_port, backend_port, tls_port, ca_bundle), mint=False)


@pytest.fixture(scope="module", params=selected(["nginx"]))
def stack(request, fakes, binary, tmp_path_factory):
    s = make_stack(request.param, NGINX_PORT, fakes, binary, tmp_path_factory)
    try:
        yield s
    finally:
        stack_down(s)


def token(stack, oid: str, roles: str = "MCP.User") -> str:
    return mint_token(stack, "--tenant", DEV_TENANT, "--oid", oid, "--roles", roles, "--scopes", "mcp.tools")


def endpoint(stack, tok: str) -> Endpoint:
    return Endpoint(server=stack.server, base_url=stack.base_url, mcp_path="/mcp", token=tok, stack=stack)


def call(stack, tok: str, name: str, args: dict | None = None):
    async def scenario():
        async with endpoint(stack, tok).client() as client:
            return await client.call_tool(name, args or {})

    return anyio.run(scenario)


def text(result) -> str:
    return " ".join(b.text for b in result.content if isinstance(b, TextContent))


def ok(result) -> dict:
    assert not result.is_error, f"tool failed: {text(result)}"
    assert result.structured_content is not None
    return result.structured_content


def failed(result) -> str:
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return text(result)


def concurrently(stack, calls: list[tuple[str, str, dict]]) -> list:
    """Runs (token, tool, arguments) calls at once, each with its own client; results in order."""
    results: list = [None] * len(calls)

    async def one(i: int, tok: str, name: str, args: dict):
        async with endpoint(stack, tok).client() as client:
            results[i] = await client.call_tool(name, args)

    async def scenario():
        async with anyio.create_task_group() as tg:
            for i, (tok, name, args) in enumerate(calls):
                tg.start_soon(one, i, tok, name, args)

    anyio.run(scenario)
    return results


# ---------------------------------------------------------------- sessions per user


def test_two_users_at_once_never_see_each_others_data(stack, fakes):
    model = fakes[1]
    alice, bob = token(stack, ALICE), token(stack, BOB)
    results = concurrently(stack, [(alice if i % 2 == 0 else bob, "get_conversations", {}) for i in range(16)])
    for i, r in enumerate(results):
        me = ALICE if i % 2 == 0 else BOB
        data = ok(r)
        assert data["user_id"] == me
        assert {c["owner"] for c in data["conversations"]} == {me}, data
    # Each signed in as themselves; a handful of first calls may race, never one login per call.
    assert 1 <= model.logins[ALICE] <= 4 and 1 <= model.logins[BOB] <= 4, model.logins
    assert ok(call(stack, alice, "get_user_info"))["user_id"] == ALICE
    assert ok(call(stack, bob, "get_conversations", {"limit": 1}))["conversations"] == model.conversations[BOB][:1]


def test_an_expired_session_is_reestablished_once(stack, fakes):
    model = fakes[1]
    carol = token(stack, CAROL)
    ok(call(stack, carol, "get_conversations"))
    assert model.logins[CAROL] == 1
    model.forget(CAROL)  # the backend dropped the session (expiry, restart)
    rejected_before = model.rejected.get("/api/conversations", 0) + model.rejected.get("/api/user_info", 0)
    data = ok(call(stack, carol, "get_conversations"))
    assert data["user_id"] == CAROL
    assert model.logins[CAROL] == 2, "signed in again, exactly once"
    rejected_after = model.rejected.get("/api/conversations", 0) + model.rejected.get("/api/user_info", 0)
    assert rejected_after - rejected_before == 1, "one 401, then the new session worked"


def test_login_status_and_logout_end_the_backend_session(stack, fakes):
    model = fakes[1]
    dave = token(stack, DAVE)
    assert ok(call(stack, dave, "backend_session_status", {"backend": "simplechat"}))["session"] == "none"
    login = ok(call(stack, dave, "backend_login", {"backend": "simplechat"}))
    assert login["session"] == "active" and login["new"] is True
    status = ok(call(stack, dave, "backend_session_status", {"backend": "simplechat", "check": True}))
    assert status["session"] == "active" and status["verified"] is True and "expires_at" in status
    assert model.live_sessions(DAVE) == 1
    out = ok(call(stack, dave, "backend_logout", {"backend": "simplechat"}))
    assert out["ended"] is True and "The backend ended the session." in out["detail"]
    assert model.live_sessions(DAVE) == 0, "the logout endpoint ended it at the backend"
    assert ok(call(stack, dave, "backend_session_status", {"backend": "simplechat"}))["session"] == "none"
    assert "Name the backend: one of chathybrid, simplechat." in failed(call(stack, dave, "backend_session_status", {}))
    logins = model.logins[DAVE]
    ok(call(stack, dave, "get_conversations"))
    assert model.logins[DAVE] == logins + 1, "the next call signed in afresh"


def test_a_session_past_its_cookie_max_age_is_replaced_without_trying_it(stack, fakes):
    model = fakes[1]
    user = "e4b14e00-0000-4000-8000-0000000000c2"
    tok = token(stack, user)
    model.session_max_age = 2
    try:
        ok(call(stack, tok, "get_conversations"))
        time.sleep(2.5)
        rejected = sum(model.rejected.values())
        ok(call(stack, tok, "get_conversations"))
    finally:
        model.session_max_age = 3600
    assert model.logins[user] == 2
    assert sum(model.rejected.values()) == rejected, "the expired cookie was not sent"


def test_token_api_key_and_hybrid_backends(stack, fakes):
    model = fakes[1]
    erin = token(stack, ERIN)
    profile = ok(call(stack, erin, "get_profile"))
    assert profile == {"user_id": ERIN, "tenant_id": DEV_TENANT, "via": "token"}
    assert ok(call(stack, erin, "service_status")) == {"status": "ok", "via": "api-key"}
    logins = model.logins.get(ERIN, 0)
    assert ok(call(stack, erin, "hybrid_profile"))["via"] == "token"
    assert model.logins.get(ERIN, 0) == logins, "an API route needs no session"
    assert ok(call(stack, erin, "hybrid_conversations"))["user_id"] == ERIN
    assert model.logins[ERIN] == logins + 1, "a web route signs in"


def test_tls_is_verified_against_the_backends_ca_bundle(stack):
    erin = token(stack, ERIN)
    assert ok(call(stack, erin, "internal_status")) == {"status": "ok", "via": "api-key"}
    refused = failed(call(stack, erin, "untrusted_status"))
    assert "The backend untrusted could not be reached: TLS failure talking to 127.0.0.1" in refused, refused


def test_path_arguments_stay_in_their_segment(stack, fakes):
    model = fakes[1]
    frank = token(stack, FRANK)
    mine = model.conversations[FRANK][0]["id"]
    assert ok(call(stack, frank, "get_conversation", {"conversation_id": mine}))["owner"] == FRANK
    for bad in ["../admin", "..", "a/b"]:
        assert "conversation_id must not" in failed(call(stack, frank, "get_conversation", {"conversation_id": bad}))
    other = model.conversations[ALICE][0]["id"]
    assert "found nothing there (404)" in failed(call(stack, frank, "get_conversation", {"conversation_id": other}))
    # Characters that would start a query or end the path are sent encoded, inside the segment.
    assert "found nothing there (404)" in failed(call(stack, frank, "get_conversation", {"conversation_id": "a?b c"}))
    with model.lock:
        assert ("GET", "/api/conversations/a%3Fb%20c") in model.requests


def test_a_backend_that_is_down_or_slow_fails_clearly_within_the_timeout(stack, fakes):
    erin = token(stack, ERIN)
    started = time.monotonic()
    down = failed(call(stack, erin, "offline_status"))
    assert "The backend offline could not be reached" in down, down
    assert time.monotonic() - started < TIMEOUT_SECONDS + 2
    started = time.monotonic()
    slow = failed(call(stack, erin, "slow_report"))
    elapsed = time.monotonic() - started
    assert "The backend simplechat could not be reached" in slow and f"did not answer within {TIMEOUT_SECONDS} s" in slow, slow
    assert TIMEOUT_SECONDS - 0.5 <= elapsed < TIMEOUT_SECONDS + 3, elapsed


def test_backend_tools_need_their_permission(stack, fakes):
    model = fakes[1]
    nobody = mint_token(stack, "--tenant", DEV_TENANT, "--oid", ERIN, "--scopes", "mcp.tools")  # no role: no permissions

    async def scenario():
        async with endpoint(stack, nobody).client() as client:
            return [t.name for t in (await client.list_tools()).tools]

    names = anyio.run(scenario)
    assert "get_conversations" not in names and "backend_login" not in names, names
    # Calling them anyway is refused before the backend hears of it.
    with model.lock:
        before = len(model.requests)
    for tool in ("get_conversations", "backend_login"):
        r = endpoint(stack, nobody).legacy("tools/call", {"name": tool, "arguments": {}})
        assert r.status == 403, r
    with model.lock:
        assert len(model.requests) == before


def test_no_cookie_token_or_key_in_the_logs_audit_or_store(stack, fakes):
    model, registry = fakes[1], fakes[4]
    ok(call(stack, token(stack, ALICE), "get_conversations"))
    ok(call(stack, token(stack, ALICE), "service_status"))
    logs = "".join(p.read_text(errors="replace") for p in (stack.run_dir / "logs").glob("*.log"))
    done = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), "audit", "export", "--since", "1d", "--config",
                           str(stack.run_dir / "config.json")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    audit = done.stdout
    # The store's files and its audit journals (a directory beside it) alike.
    store = b"".join(p.read_bytes() for p in (stack.run_dir / "state").rglob("*") if ".db" in p.name and p.is_file()
                     or p.parent.name.endswith(".audit-journal") and p.is_file())
    assert "backend session established" in logs
    records = [json.loads(line) for line in audit.splitlines() if line.strip()]
    assert any(r["tool"] == "get_conversations" and r["upstream_status"] == 200 for r in records), "the backend's status is audited"
    assert any(r["tool"] == "get_conversation" and r["upstream_status"] == 404 for r in records)
    with registry.lock:
        tokens = list(registry.issued)
    with model.lock:
        cookies = list(model.issued_cookies)
    assert tokens and cookies
    for secret in tokens + cookies + [SECRET, API_KEY]:
        assert secret not in logs and secret not in audit, "a secret reached the logs or the audit trail"
        assert secret.encode() not in store, "a secret is readable in the store"
    key = stack.run_dir / "state" / "backend-sessions.key"
    assert key.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- several processes (mod_fcgid)


@pytest.fixture(scope="module", params=selected(["apache-fcgid"]))
def fcgid_stack(request, fakes, binary, tmp_path_factory):
    s = make_stack(request.param, FCGID_PORT, fakes, binary, tmp_path_factory)
    try:
        yield s
    finally:
        stack_down(s)


def test_sessions_are_shared_across_processes(fcgid_stack, fakes):
    model = fakes[1]
    user = "5ba4ed00-0000-4000-8000-0000000000c1"
    model.conversations[user] = [{"id": "shared-1", "title": "shared", "owner": user}]
    tok = token(fcgid_stack, user)
    ok(call(fcgid_stack, tok, "backend_login", {"backend": "simplechat"}))
    assert model.logins[user] == 1
    results = concurrently(fcgid_stack, [(tok, "get_conversations", {}) for _ in range(24)])
    for r in results:
        assert ok(r)["conversations"] == model.conversations[user]
    assert model.logins[user] == 1, "every process used the session the first one stored"
    pids = set()
    for p in (fcgid_stack.run_dir / "logs").glob("*.log"):
        for line in p.read_text(errors="replace").splitlines():
            start = line.find("{")
            if start < 0:
                continue
            try:
                entry = json.loads(line[start:])
            except ValueError:
                continue
            if entry.get("msg") == "mcp request" and entry.get("tool") == "get_conversations":
                pids.add(entry.get("pid"))
    assert len(pids) >= 2, f"the calls were served by {len(pids)} process(es); mod_fcgid should have started more"
