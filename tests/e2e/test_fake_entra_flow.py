"""The fake Entra ID's interactive sign-in (tests/fakes/fake_entra.py), driven with plain HTTP and
no gateway: authorize -> code -> tokens -> refresh, and the deviations from what MCP clients expect
that the authorization front has to absorb (exact redirect URIs, single-use codes, no `resource`,
no PKCE methods in the discovery document, no `iss` on the authorization response)."""
from __future__ import annotations

import base64
import hashlib
import secrets
import sys
import urllib.parse
from pathlib import Path

import httpx2
import jwt
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from fake_entra import EntraAPI, EntraBehaviour, EntraUser, TokenRegistry, start_entra  # noqa: E402

GATEWAY_APP = "9a9a9a9a-0000-4000-8000-0000000000f1"
SECRET = "fake-entra-flow-Secret~value"
API_APP = "a9a9a9a9-0000-4000-8000-0000000000f2"
API_URI = "https://mcp.contoso.example/mcp"
SCOPE = f"{API_URI}/mcp.tools"
LEGACY_API_APP = "a9a9a9a9-0000-4000-8000-0000000000f3"
LEGACY_API_URI = "api://legacy-mcp"
REDIRECT = "https://mcp.contoso.example/oauth/callback"
LOCALHOST_REDIRECT = "http://localhost:8400/callback"
TENANT_A = "aaaaaaaa-0000-4000-8000-0000000000f0"
TENANT_B = "bbbbbbbb-0000-4000-8000-0000000000f0"
ALICE = EntraUser(oid="a11ce000-0000-4000-8000-0000000000f1", tid=TENANT_A, preferred_username="alice@a.example",
                  name="Alice", roles=["MCP.User"])
BOB = EntraUser(oid="b0b00000-0000-4000-8000-0000000000f2", tid=TENANT_B, preferred_username="bob@b.example",
                name="Bob", scopes=["mcp.read"])


@pytest.fixture(scope="module")
def fake():
    behaviour = EntraBehaviour(client_id=GATEWAY_APP, client_secret=SECRET, resource="https://analysis.windows.net/powerbi/api",
                               gateway_audiences=[API_APP], redirect_uris=[REDIRECT, LOCALHOST_REDIRECT],
                               apis=[EntraAPI(client_id=API_APP, identifier_uris=[API_URI], scopes=["mcp.tools", "mcp.read"]),
                                     EntraAPI(client_id=LEGACY_API_APP, identifier_uris=[LEGACY_API_URI], scopes=["mcp.tools"],
                                              token_version=1)],
                               users=[ALICE, BOB])
    registry = TokenRegistry()
    server = start_entra(behaviour, registry)
    with httpx2.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}", follow_redirects=False, timeout=10) as http:
        yield behaviour, registry, http
    server.shutdown()


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize(http, tenant: str = "organizations", **params) -> httpx2.Response:
    query = {"client_id": GATEWAY_APP, "response_type": "code", "redirect_uri": REDIRECT, "response_mode": "query",
             "scope": f"{SCOPE} offline_access openid", "state": "st-" + secrets.token_hex(8), "nonce": "n-" + secrets.token_hex(8)}
    query.update(params)
    return http.get(f"/{tenant}/oauth2/v2.0/authorize", params={k: v for k, v in query.items() if v is not None})


def redirected(reply: httpx2.Response, to: str = REDIRECT) -> dict[str, str]:
    assert reply.status_code == 302, reply.text
    location = reply.headers["Location"]
    assert location.startswith(to + "?"), location
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def sign_in(http, tenant: str = "organizations", **params) -> tuple[str, str]:
    """A code and its PKCE verifier."""
    verifier, challenge = pkce()
    answer = redirected(authorize(http, tenant, code_challenge=challenge, code_challenge_method="S256", **params))
    return answer["code"], verifier


def token(http, tenant: str = "organizations", **form) -> httpx2.Response:
    body = {"client_id": GATEWAY_APP, "client_secret": SECRET}
    body.update(form)
    return http.post(f"/{tenant}/oauth2/v2.0/token", data={k: v for k, v in body.items() if v is not None})


def redeem(http, code: str, verifier: str | None, tenant: str = "organizations", **form) -> httpx2.Response:
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier,
              "scope": f"{SCOPE} offline_access openid"}
    fields.update(form)
    return token(http, tenant, **fields)


def entra_error(reply: httpx2.Response, status: int, error: str, code: int) -> dict:
    """Entra's error shape, exactly."""
    assert reply.status_code == status, reply.text
    body = reply.json()
    assert body["error"] == error and body["error_codes"] == [code], body
    assert body["error_description"].startswith(f"AADSTS{code}: "), body
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys(), body
    return body


def error_page(reply: httpx2.Response, code: int) -> None:
    """Entra's answer when it cannot trust the redirect URI: a page in the browser, never a redirect."""
    assert reply.status_code == 400 and "Location" not in reply.headers, reply.headers
    assert reply.headers["Content-Type"].startswith("text/html") and f"AADSTS{code}:" in reply.text, reply.text


def verified(http, raw: str, audience: str, issuer: str) -> dict:
    """Checked with the key the discovery document publishes, as the gateway checks it."""
    keys = http.get(http.get("/organizations/v2.0/.well-known/openid-configuration").json()["jwks_uri"]).json()["keys"]
    kid = jwt.get_unverified_header(raw)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid)).key
    return jwt.decode(raw, key, algorithms=["RS256"], audience=audience, issuer=issuer)


def test_discovery_omits_pkce_methods_and_publishes_the_signing_key(fake):
    _, _, http = fake
    base = str(http.base_url).rstrip("/")
    doc = http.get("/organizations/v2.0/.well-known/openid-configuration").json()
    assert doc["issuer"] == f"{base}/{{tenantid}}/v2.0"
    assert doc["authorization_endpoint"] == f"{base}/organizations/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{base}/organizations/oauth2/v2.0/token"
    assert "code_challenge_methods_supported" not in doc, "Entra's document does not name PKCE methods"
    assert http.get(f"/{TENANT_A}/v2.0/.well-known/openid-configuration").json()["issuer"] == f"{base}/{TENANT_A}/v2.0"
    [key] = http.get(doc["jwks_uri"]).json()["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["issuer"] == f"{base}/{{tenantid}}/v2.0"
    assert len(base64.urlsafe_b64decode(key["n"] + "==")) == 256, "a 2048-bit key"
    entra_error(http.get("/contoso/v2.0/.well-known/openid-configuration"), 400, "invalid_tenant", 90002)


def test_sign_in_then_code_then_tokens_then_refresh(fake):
    behaviour, registry, http = fake
    before = dict(behaviour.counts)
    base = str(http.base_url).rstrip("/")
    verifier, challenge = pkce()
    reply = authorize(http, code_challenge=challenge, code_challenge_method="S256", state="the-state", nonce="the-nonce")
    answer = redirected(reply)
    assert set(answer) == {"code", "state"} and answer["state"] == "the-state", "no iss: Entra sends none"
    assert behaviour.authorize_requests[-1]["code_challenge"] == challenge

    reply = redeem(http, answer["code"], verifier)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.json()
    assert body["token_type"] == "Bearer" and isinstance(body["expires_in"], int)
    assert body["scope"].split() == [SCOPE, "offline_access", "openid"]
    access = verified(http, body["access_token"], API_APP, f"{base}/{TENANT_A}/v2.0")
    assert (access["tid"], access["oid"], access["scp"], access["roles"]) == (TENANT_A, ALICE.oid, "mcp.tools", ["MCP.User"])
    assert (access["azp"], access["azpacr"], access["ver"]) == (GATEWAY_APP, "1", "2.0")
    assert registry.lookup(body["access_token"]) == access, "recorded like every token the fake issues"
    identity = verified(http, body["id_token"], GATEWAY_APP, f"{base}/{TENANT_A}/v2.0")
    assert identity["nonce"] == "the-nonce" and identity["oid"] == ALICE.oid

    first = body["refresh_token"]
    refreshed = token(http, grant_type="refresh_token", refresh_token=first, scope=f"{SCOPE} offline_access openid")
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["refresh_token"]
    assert second != first, "Entra replaces the refresh token on every use"
    assert verified(http, refreshed.json()["access_token"], API_APP, f"{base}/{TENANT_A}/v2.0")["oid"] == ALICE.oid
    again = token(http, grant_type="refresh_token", refresh_token=first)
    assert again.status_code == 200, "and keeps the old one working"
    assert again.json()["scope"].split() == [SCOPE, "offline_access", "openid"], "the scope of the sign-in by default"

    assert behaviour.counts["authorize"] == before["authorize"] + 1
    assert behaviour.counts["authorization_code"] == before["authorization_code"] + 1
    assert behaviour.counts["refresh_token"] == before["refresh_token"] + 2
    assert behaviour.counts["resource_sent"] == before["resource_sent"]


def test_v1_api_token_and_no_refresh_token_without_offline_access(fake):
    _, _, http = fake
    scope = f"{LEGACY_API_URI}/mcp.tools openid"
    code, verifier = sign_in(http, scope=scope)
    body = redeem(http, code, verifier, scope=scope).json()
    assert "refresh_token" not in body and "id_token" in body
    claims = verified(http, body["access_token"], LEGACY_API_URI, f"https://sts.windows.net/{TENANT_A}/")
    assert (claims["ver"], claims["appid"], claims["appidacr"], claims["scp"]) == ("1.0", GATEWAY_APP, "1", "mcp.tools")


@pytest.mark.parametrize("uri", [REDIRECT + "/", REDIRECT + "?next=1", "https://mcp.contoso.example/OAuth/callback",
                                 "https://evil.example/oauth/callback", "http://127.0.0.1:8400/callback"])
def test_redirect_uri_not_registered_exactly_gets_an_error_page(fake, uri):
    _, _, http = fake
    error_page(authorize(http, redirect_uri=uri), 50011)


def test_only_the_localhost_port_is_ignored(fake):
    _, _, http = fake
    uri = "http://localhost:9999/callback"
    assert "code" in redirected(authorize(http, redirect_uri=uri), to=uri)


def test_unknown_client_and_tenant_get_error_pages(fake):
    _, _, http = fake
    error_page(authorize(http, client_id="00000000-0000-4000-8000-000000000000"), 700016)
    error_page(authorize(http, "contoso.example"), 90002)
    error_page(authorize(http, redirect_uri=None), 900971)


def test_code_is_single_use(fake):
    _, _, http = fake
    code, verifier = sign_in(http)
    assert redeem(http, code, verifier).status_code == 200
    body = entra_error(redeem(http, code, verifier), 400, "invalid_grant", 54005)
    assert "Trace ID: " in body["error_description"]


def test_resource_must_name_the_scopes_api(fake):
    behaviour, _, http = fake
    before = behaviour.counts["resource_sent"]
    answer = redirected(authorize(http, resource="https://mcp.contoso.example/other", state="s1"))
    assert answer["error"] == "invalid_request" and answer["state"] == "s1" and "code" not in answer, answer
    assert answer["error_description"].splitlines()[0] == ("AADSTS9010010: The resource parameter provided in the request "
                                                           "doesn't match with the requested scopes.")
    assert "Trace ID: " in answer["error_description"]
    assert "code" in redirected(authorize(http, resource=API_URI))
    assert behaviour.counts["resource_sent"] == before + 2
    code, verifier = sign_in(http)
    entra_error(redeem(http, code, verifier, resource="https://mcp.contoso.example/other"), 400, "invalid_request", 9010010)


def test_pkce_and_redirect_uri_are_checked_at_redemption(fake):
    _, _, http = fake
    code, verifier = sign_in(http)
    entra_error(redeem(http, code, pkce()[0]), 400, "invalid_grant", 501481)
    entra_error(redeem(http, code, None), 400, "invalid_grant", 501481)
    entra_error(redeem(http, code, verifier, redirect_uri=LOCALHOST_REDIRECT), 400, "invalid_grant", 500112)
    assert redeem(http, code, verifier).status_code == 200
    plain = secrets.token_urlsafe(48)
    answer = redirected(authorize(http, code_challenge=plain, code_challenge_method="plain"))
    assert redeem(http, answer["code"], plain).status_code == 200
    no_pkce = redirected(authorize(http))["code"]
    assert redeem(http, no_pkce, None).status_code == 200, "PKCE is optional for a confidential client"
    answer = redirected(authorize(http, code_challenge=plain, code_challenge_method="S512"))
    assert answer["error"] == "invalid_request" and answer["error_description"].startswith("AADSTS50149:"), answer


def test_code_expires(fake, monkeypatch):
    behaviour, _, http = fake
    monkeypatch.setattr(behaviour, "code_lifetime", -1)
    code, verifier = sign_in(http)
    entra_error(redeem(http, code, verifier), 400, "invalid_grant", 70008)


def test_code_is_redeemed_under_the_tenant_it_was_issued_for(fake):
    _, _, http = fake
    code, verifier = sign_in(http)
    entra_error(redeem(http, code, verifier, tenant=TENANT_A), 400, "invalid_grant", 700005)
    code, verifier = sign_in(http, TENANT_A)
    assert redeem(http, code, verifier, tenant=TENANT_A).status_code == 200


def test_the_user_denies_consent(fake, monkeypatch):
    behaviour, _, http = fake
    monkeypatch.setattr(behaviour, "deny_consent", True)
    answer = redirected(authorize(http, state="s2"))
    assert (answer["error"], answer["error_subcode"], answer["state"]) == ("access_denied", "cancel", "s2")
    assert answer["error_description"].startswith("AADSTS65004: ")


def test_who_signs_in_is_settable(fake, monkeypatch):
    behaviour, _, http = fake
    code, verifier = sign_in(http, login_hint="bob@b.example", scope=f"{API_URI}/.default offline_access openid")
    body = redeem(http, code, verifier, scope=None).json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert (claims["tid"], claims["oid"], claims["scp"]) == (TENANT_B, BOB.oid, "mcp.read"), "only Bob's consented scope"
    assert "roles" not in claims
    monkeypatch.setattr(behaviour, "signed_in_user", BOB.oid)
    code, verifier = sign_in(http)
    assert jwt.decode(redeem(http, code, verifier).json()["access_token"], options={"verify_signature": False})["oid"] == BOB.oid
    error_page(authorize(http, TENANT_A), 50020)
    error_page(authorize(http, login_hint="nobody@a.example"), 50034)


def test_roles_are_read_at_every_issuance(fake, monkeypatch):
    behaviour, _, http = fake
    code, verifier = sign_in(http)
    refresh_token = redeem(http, code, verifier).json()["refresh_token"]
    monkeypatch.setattr(ALICE, "roles", ["MCP.Admin"])
    refreshed = token(http, grant_type="refresh_token", refresh_token=refresh_token).json()
    assert jwt.decode(refreshed["access_token"], options={"verify_signature": False})["roles"] == ["MCP.Admin"]


@pytest.mark.parametrize("scope, error, code", [
    ("mcp.tools openid", "invalid_client", 650053),  # no resource prefix: looked up on Microsoft Graph
    (f"{API_URI}/mcp.delete openid", "invalid_client", 650053),
    ("https://unknown.example/api/mcp.tools", "invalid_resource", 500011),
    ("", "invalid_request", 900144),
    ("  ", "invalid_request", 900144),
])
def test_scope_errors_go_back_to_the_client(fake, scope, error, code):
    _, _, http = fake
    answer = redirected(authorize(http, scope=scope))
    assert answer["error"] == error and answer["error_description"].startswith(f"AADSTS{code}: "), answer


def test_client_authentication(fake):
    _, _, http = fake
    code, verifier = sign_in(http)
    entra_error(redeem(http, code, verifier, client_secret=None), 401, "invalid_client", 7000218)
    entra_error(redeem(http, code, verifier, client_secret="wrong"), 401, "invalid_client", 7000215)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier}
    basic = base64.b64encode(f"{GATEWAY_APP}:{urllib.parse.quote_plus(SECRET)}".encode()).decode()
    reply = http.post("/organizations/oauth2/v2.0/token", data=form, headers={"Authorization": f"Basic {basic}"})
    assert reply.status_code == 200, reply.text


def test_refresh_token_errors(fake, monkeypatch):
    behaviour, _, http = fake
    entra_error(token(http, grant_type="refresh_token", refresh_token="1.Anot-a-token"), 400, "invalid_grant", 9002313)
    code, verifier = sign_in(http, login_hint="bob@b.example")
    refresh_token = redeem(http, code, verifier).json()["refresh_token"]
    behaviour.sign_ins.revoke_user(BOB.oid)
    entra_error(token(http, grant_type="refresh_token", refresh_token=refresh_token), 400, "invalid_grant", 50173)
    monkeypatch.setattr(behaviour, "refresh_token_lifetime", -1)
    code, verifier = sign_in(http)
    refresh_token = redeem(http, code, verifier).json()["refresh_token"]
    entra_error(token(http, grant_type="refresh_token", refresh_token=refresh_token), 400, "invalid_grant", 700082)


def test_a_signed_in_users_token_goes_on_behalf_of_and_app_grants_stay_tenant_specific(fake):
    behaviour, registry, http = fake
    code, verifier = sign_in(http)
    access = redeem(http, code, verifier).json()["access_token"]
    obo = token(http, TENANT_A, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer", requested_token_use="on_behalf_of",
                assertion=access, scope=f"{behaviour.resource}/.default")
    assert obo.status_code == 200, obo.text
    assert registry.lookup(obo.json()["access_token"])["oid"] == ALICE.oid
    entra_error(token(http, grant_type="client_credentials", scope=f"{behaviour.resource}/.default"), 400, "invalid_request", 90002)
    assert code in behaviour.sign_ins.issued_secrets()
