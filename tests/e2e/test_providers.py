"""Identity providers beyond Entra, end to end: the official MCP client -> nginx -> mcp-fcgi, with
`auth.providers` listing Entra (development keys here), a Google-shaped OpenID issuer, an
Auth0-style issuer, Google access tokens (tokeninfo), GitHub and API keys, against the local
fakes in tests/fakes/fake_identity_providers.py. Each provider's user is served with a qualified
id; the refusals are precise; a provider that is down is a 503."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp.types import TextContent

from conftest import BASE_PORT, DEV_TENANT, bearer_token_for, e2e_config, selected, stack_down, stack_up
from mcp_http import Endpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from fake_identity_providers import GitHubUser, IdentityBehaviour, IdentityProviders  # noqa: E402

PORT = BASE_PORT + 30
GOOGLE_CLIENT = "1234567890-e2e.apps.googleusercontent.com"
AUTH0_AUDIENCE = "https://mcp.example.test/api"
OCTOCAT = "gho_16C7e42F292c6912E7710c838347Ae178B4a"
OUTSIDER = "ghp_outsider0000000000000000000000000000"


@pytest.fixture(scope="module")
def idp():
    fake = IdentityProviders(IdentityBehaviour(google_client=GOOGLE_CLIENT))
    fake.behaviour.github_tokens[OCTOCAT] = GitHubUser("octocat", 583231, "The Octocat", ["acme-corp"])
    fake.behaviour.github_tokens[OUTSIDER] = GitHubUser("mallory", 666, None, ["evil-corp"])
    yield fake
    fake.shutdown()


def providers_config(port: int, idp: IdentityProviders) -> dict:
    cfg = e2e_config(port)
    cfg["auth"]["allow_insecure_http_for_testing"] = True
    cfg["auth"]["providers"] = [
        {"type": "entra"},
        {"type": "oidc", "name": "google", "issuer": idp.google_issuer, "audiences": [GOOGLE_CLIENT],
         "authorized_party": GOOGLE_CLIENT, "roles": ["MCP.User"]},
        {"type": "oidc", "name": "auth0", "issuer": idp.auth0_issuer, "audiences": [AUTH0_AUDIENCE],
         "roles_claim": "permissions", "tenant": DEV_TENANT},
        {"type": "google_access_token", "client_id": GOOGLE_CLIENT, "tokeninfo_url": idp.base + "/google/tokeninfo"},
        {"type": "github", "api_url": idp.base + "/github",
         "organizations": {"acme-corp": {"tenant": DEV_TENANT, "roles": ["MCP.User"]}}},
        {"type": "api_key"},
    ]
    cfg["tenants"] = {DEV_TENANT: {"name": "Contoso", "email_domains": ["contoso.com"]}}
    return cfg


@pytest.fixture(scope="module", params=selected(["nginx"]))
def stack(request, idp, binary, tmp_path_factory):
    s = stack_up(request.param, PORT, binary, tmp_path_factory.mktemp("providers"), providers_config(PORT, idp))
    try:
        yield s
    finally:
        stack_down(s)


def cli(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), *args, "--config", str(stack.run_dir / "config.json")],
                          capture_output=True, text=True, timeout=30)


def endpoint(stack, token: str | None) -> Endpoint:
    return Endpoint(server=stack.server, base_url=stack.base_url, mcp_path="/mcp", token=token, stack=stack)


def whoami(stack, token: str) -> dict:
    """whoami through the official client: the identity the gateway established."""
    async def scenario():
        async with endpoint(stack, token).client() as client:
            return await client.call_tool("whoami", {})

    result = anyio.run(scenario)
    assert not result.is_error, result
    return json.loads(" ".join(b.text for b in result.content if isinstance(b, TextContent)))


def refusal(stack, token: str) -> tuple[int, str]:
    r = endpoint(stack, token).legacy("ping")
    return r.status, r.headers.get("www-authenticate", "")


def audit_users(stack) -> list[str]:
    """The trail as `mcp-fcgi audit tail` reads it: the journals and the store as one."""
    done = cli(stack, "audit", "tail", "--lines", "1000")
    assert done.returncode == 0, done.stderr
    return [r["user"] for r in map(json.loads, done.stdout.splitlines()) if r.get("user")]


def test_entra_still_works_beside_the_other_providers(stack):
    me = whoami(stack, bearer_token_for(stack))
    assert me["provider"] == "entra" and me["tenantId"] == DEV_TENANT


def test_google_id_token_user_gets_a_qualified_id_and_the_email_domains_tenant(stack, idp):
    me = whoami(stack, idp.google_id_token("110169484474386276334", "ada@contoso.com"))
    assert me["provider"] == "oidc:google"
    assert me["objectId"] == "oidc:google:110169484474386276334"
    assert me["tenantId"] == DEV_TENANT and me["permissions"] == ["user"]
    status, challenge = refusal(stack, idp.google_id_token("1", "eve@contoso.com", verified=False))
    assert status == 401 and "email is not verified" in challenge, challenge
    status, challenge = refusal(stack, idp.google_id_token("1", "ada@contoso.com", aud="999-other.apps.googleusercontent.com"))
    assert status == 401 and "for another audience" in challenge, challenge


def test_auth0_permissions_and_an_issuer_without_its_trailing_slash(stack, idp):
    me = whoami(stack, idp.auth0_token("auth0|5f7c8ec7c33c6c004bbafe82", AUTH0_AUDIENCE, ["MCP.Admin"]))
    assert me["objectId"] == "oidc:auth0:auth0|5f7c8ec7c33c6c004bbafe82"
    assert me["roles"] == ["MCP.Admin"] and sorted(me["permissions"]) == ["admin", "user"]
    status, challenge = refusal(stack, idp.auth0_token("auth0|1", AUTH0_AUDIENCE, [], iss=idp.auth0_issuer.rstrip("/")))
    assert status == 401 and "issuer this API does not trust" in challenge, challenge
    # Auth0's iss, Google's key: Auth0's key set does not hold it.
    status, challenge = refusal(stack, idp.auth0_token("auth0|1", AUTH0_AUDIENCE, [], key="google"))
    assert status == 401 and "not among the issuer's current signing keys" in challenge, challenge


def test_google_access_token_is_asked_once_then_shared_by_digest(stack, idp):
    token = idp.behaviour.google_access_token("ya29.a0AfH6SMB-e2e-access", "2002", "grace@contoso.com")
    before = idp.behaviour.counts["/google/tokeninfo"]
    assert whoami(stack, token)["objectId"] == "google:2002"
    assert whoami(stack, token)["objectId"] == "google:2002"
    assert idp.behaviour.counts["/google/tokeninfo"] == before + 1
    other = idp.behaviour.google_access_token("ya29.other-client", "2003", "x@contoso.com", aud="999-other.apps.googleusercontent.com")
    status, challenge = refusal(stack, other)
    assert status == 401 and "for another audience" in challenge, challenge
    # The store, its WAL, and the audit journals beside it.
    state = stack.run_dir / "state"
    store = b"".join(p.read_bytes() for p in state.rglob("*") if p.is_file() and ".db" in str(p.relative_to(state)))
    assert token.encode() not in store


def test_github_members_outsiders_and_github_down(stack, idp):
    me = whoami(stack, OCTOCAT)
    assert me["objectId"] == "github:583231" and me["permissions"] == ["user"]
    status, challenge = refusal(stack, OUTSIDER)
    assert status == 401 and "not a member of an organization this API accepts" in challenge, challenge
    status, challenge = refusal(stack, "gho_revoked000000000000000000000000000000")
    assert status == 401 and "refused by its identity provider" in challenge, challenge
    idp.behaviour.github_tokens["gho_new0000000000000000000000000000000000"] = GitHubUser("newbie", 777, None, ["acme-corp"])
    idp.behaviour.down = True
    try:
        r = endpoint(stack, "gho_new0000000000000000000000000000000000").legacy("ping")
        assert r.status == 503 and r.headers.get("retry-after") == "30", r
    finally:
        idp.behaviour.down = False


def test_api_key_created_used_audited_and_revoked(stack):
    made = cli(stack, "apikey", "create", "--name", "nightly export", "--tenant", DEV_TENANT, "--roles", "MCP.User", "--expires", "1d")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("mcpk_") and "shown once" in made.stderr
    key_id = key[5:21]
    me = whoami(stack, key)
    assert me["objectId"] == f"apikey:{key_id}" and me["kind"] == "app"
    assert f"apikey:{key_id}" in audit_users(stack)
    listed = cli(stack, "apikey", "list")
    assert key_id in listed.stdout and key[22:] not in listed.stdout
    assert cli(stack, "apikey", "revoke", key_id).returncode == 0
    status, challenge = refusal(stack, key)
    assert status == 401 and "The API key has been revoked." in challenge, challenge
    status, challenge = refusal(stack, key[:-1] + ("A" if key[-1] != "A" else "B"))
    assert status == 401 and "The API key is not valid." in challenge, challenge


def test_same_raw_id_from_two_providers_stays_apart_in_the_audit(stack, idp):
    whoami(stack, idp.google_id_token("42", "ada@contoso.com"))
    whoami(stack, idp.behaviour.google_access_token("ya29.same-raw-id", "42", "ada@contoso.com"))
    users = audit_users(stack)
    assert "oidc:google:42" in users and "google:42" in users


def test_metadata_lists_every_authorization_server(stack, idp):
    doc = endpoint(stack, None).request("GET", "/.well-known/oauth-protected-resource/mcp").json
    servers = doc["authorization_servers"]
    assert idp.google_issuer in servers and idp.auth0_issuer in servers
    assert "https://accounts.google.com" in servers and "https://github.com/login/oauth" in servers


ENTRALESS_PORT = BASE_PORT + 33


@pytest.fixture(scope="module", params=selected(["nginx"]))
def entraless_stack(request, idp, binary, tmp_path_factory):
    """An instance that trusts no Entra at all: no client_id, no audiences, only the other providers."""
    cfg = providers_config(ENTRALESS_PORT, idp)
    cfg["auth"]["providers"] = [p for p in cfg["auth"]["providers"] if p["type"] != "entra"]
    for key in ("client_id", "audiences"):
        del cfg["auth"][key]
    s = stack_up(request.param, ENTRALESS_PORT, binary, tmp_path_factory.mktemp("entraless"), cfg, mint=False)
    try:
        yield s
    finally:
        stack_down(s)


def test_an_instance_without_entra_serves_the_other_providers_only(entraless_stack, stack, idp):
    ready = endpoint(entraless_stack, None).request("GET", "/ready")
    assert ready.status == 200 and ready.json["status"] == "ready", ready
    me = whoami(entraless_stack, idp.google_id_token("110169484474386276334", "ada@contoso.com"))
    assert me["objectId"] == "oidc:google:110169484474386276334"
    assert whoami(entraless_stack, OCTOCAT)["objectId"] == "github:583231"
    # A development Entra token (the other stack's) names an issuer this instance does not trust.
    status, challenge = refusal(entraless_stack, bearer_token_for(stack))
    assert status == 401 and "issuer this API does not trust" in challenge, challenge
    doc = endpoint(entraless_stack, None).request("GET", "/.well-known/oauth-protected-resource/mcp").json
    assert not any("login.microsoftonline.com" in s for s in doc["authorization_servers"]), doc
