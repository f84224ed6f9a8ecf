"""The OAuth 2.1 authorization front end to end, through real nginx and real Apache mod_fcgid,
against the fake Entra ID (tests/fakes/fake_entra.py) and a local TLS server for Client ID
Metadata Documents (oauth_rig.py):

1. the official Python MCP client's OAuth provider signs in by itself (dynamic registration,
   and a metadata-document client id), calls tools as the signed-in user and refreshes, with a
   restart of the stack in the middle of each flow;
2. the consent page in headless Chromium: Allow completes the flow, Deny returns access_denied;
3. attack cases, each with its exact answer;
4. no code, token, verifier or secret in the logs or the audit trail;
5. an instance without `oauth` is the plain resource server it was."""
from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from pathlib import Path

import anyio
import httpx2
import pytest

from conftest import BASE_PORT, selected, stack_down, stack_up
from oauth_rig import (ALICE, DOCUMENT_MAX_BYTES, MALLORY, PLAIN, REFRESH_GRACE_SECONDS, SCOPE, SECRET, STRICT,
                       STRICT_REGISTRATIONS_PER_HOUR, TENANT_A, Browser, DocumentServer, responder_logs, audit_export,
                       auth_server_metadata, new_fake_entra, oauth_config, pkce, query_of, register, restart,
                       token_request)

SERVERS = selected(["nginx", "apache-fcgid"])
PORTS = {"nginx": BASE_PORT + 40, "apache-fcgid": BASE_PORT + 41}
CLIENT_REDIRECT = "http://127.0.0.1:{port}/callback"
# Every code, token, verifier and secret a test saw, per server, for the leak checks (4).
SEEN: dict[str, set[str]] = {}


@pytest.fixture(scope="module")
def fake():
    behaviour, server = new_fake_entra(list(PORTS.values()))
    yield behaviour, server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def documents():
    server = DocumentServer(Path("/tmp/mcp-fcgi-e2e-oauth-ca"))
    yield server
    server.close()


class Rig:
    def __init__(self, stack, config_path: Path, binary: Path, fake, documents: DocumentServer):
        self.stack, self.config_path, self.binary = stack, config_path, binary
        self.entra, self.documents = fake[0], documents
        self.gateway = stack.base_url
        # The front is at the root here: its issuer is written with the slash, as URL parsers write it.
        self.issuer = stack.base_url + "/"
        self.seen = SEEN.setdefault(stack.server, set())

    def restart(self) -> None:
        restart(self.stack, self.binary, self.config_path)

    def browser(self) -> Browser:
        return Browser(self.gateway)

    def remember(self, *values: str | None) -> None:
        self.seen.update(v for v in values if v)


@pytest.fixture(scope="module", params=SERVERS)
def rig(request, fake, documents, binary, tmp_path_factory):
    port = PORTS[request.param]
    root = tmp_path_factory.mktemp("oauth")
    s = stack_up(request.param, port, binary, root, oauth_config(port, fake[1], str(documents.ca)), mint=False)
    try:
        yield Rig(s, root / f"config-{request.param}-{port}.json", binary, fake, documents)
    finally:
        stack_down(s)


# ---------------------------------------------------------------- raw sign-in helpers


def registered_client(rig: Rig, redirect_uri: str | None = None, base: str = "", **metadata) -> tuple[str, str]:
    redirect_uri = redirect_uri or CLIENT_REDIRECT.format(port=9)
    reply = register(rig.gateway, base, redirect_uris=[redirect_uri], **metadata)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    rig.remember(body.get("client_secret"))
    return body["client_id"], redirect_uri


def authorize_url(rig: Rig, client_id: str, redirect_uri: str, challenge: str | None, state: str | None = "st",
                  base: str = "", **extra) -> str:
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state,
             "code_challenge": challenge, "code_challenge_method": "S256", "scope": SCOPE,
             "resource": f"{rig.gateway}{base}/mcp"}
    query.update(extra)
    return f"{rig.gateway}{base}/oauth/authorize?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})


def signed_in_code(rig: Rig, client_id: str, redirect_uri: str, browser: Browser | None = None) -> tuple[str, str]:
    """A code of ours for `client_id` (consent allowed) and its PKCE verifier."""
    verifier, challenge = pkce()
    answer = (browser or rig.browser()).authorize(authorize_url(rig, client_id, redirect_uri, challenge), redirect_uri)
    assert "code" in answer, answer
    assert answer["state"] == "st" and answer["iss"] == rig.issuer, answer
    rig.remember(answer["code"], verifier)
    return answer["code"], verifier


def redeem(rig: Rig, client_id: str, redirect_uri: str, code: str, verifier: str, **extra) -> httpx2.Response:
    form = {"grant_type": "authorization_code", "client_id": client_id, "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier, **extra}
    reply = token_request(rig.gateway, form)
    if reply.status_code == 200:
        rig.remember(reply.json()["access_token"], reply.json().get("refresh_token"))
    return reply


def refresh(rig: Rig, client_id: str, token: str) -> httpx2.Response:
    reply = token_request(rig.gateway, {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": token})
    if reply.status_code == 200:
        rig.remember(reply.json()["access_token"], reply.json().get("refresh_token"))
    return reply


def oauth_error(reply: httpx2.Response, status: int, error: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.json()["error"] == error, reply.text
    assert reply.headers.get("cache-control") == "no-store", reply.headers


def error_page(reply: httpx2.Response, status: int = 400) -> None:
    """A page for the person, never a redirect: the request could not be trusted to go anywhere."""
    assert reply.status_code == status, reply.text[:500]
    assert "location" not in reply.headers, reply.headers
    assert reply.headers["content-type"].startswith("text/html"), reply.headers
    assert reply.headers["x-frame-options"] == "DENY"


def error_redirect(rig: Rig, reply: httpx2.Response, redirect_uri: str, error: str, state: str | None = "st") -> dict:
    assert reply.status_code == 302, reply.text[:500]
    location = reply.headers["location"]
    assert location.startswith(redirect_uri + "?"), location
    answer = query_of(location)
    assert answer["error"] == error and answer["iss"] == rig.issuer and "code" not in answer, answer
    assert answer.get("state") == state, answer
    return answer


# ---------------------------------------------------------------- 1. the official client's OAuth provider


class MemoryStorage:
    def __init__(self):
        self.tokens = None
        self.client_info = None
        self.history: list = []

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens
        self.history.append(tokens)

    async def get_client_info(self):
        return self.client_info

    async def set_client_info(self, info):
        self.client_info = info


def provider_flow(rig: Rig, client_metadata_url: str | None, restart_before: str) -> dict:
    """The MCP client signs in by itself, lists and calls tools, and refreshes. The stack is
    restarted before the token exchange (`code`) or before the refresh (`refresh`)."""
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

    redirect_uri = CLIENT_REDIRECT.format(port=33418)
    storage, browser, consent, answers, sent = MemoryStorage(), rig.browser(), [], [], []

    async def redirect_handler(url: str) -> None:
        answers.append(browser.authorize(url, redirect_uri, consent=consent))
        if restart_before == "code":
            rig.restart()  # the registration, the grant and the code must all survive it

    async def callback_handler() -> AuthorizationCodeResult:
        a = answers[-1]
        assert "code" in a, a
        return AuthorizationCodeResult(code=a["code"], state=a.get("state"), iss=a.get("iss"))

    async def record(request: httpx2.Request) -> None:
        if request.url.path.endswith("/oauth/token"):
            sent.append(dict(urllib.parse.parse_qsl(request.content.decode())))

    metadata = OAuthClientMetadata(client_name="E2E MCP client", redirect_uris=[redirect_uri],
                                   grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                   token_endpoint_auth_method="none")
    provider = OAuthClientProvider(server_url=f"{rig.gateway}/mcp", client_metadata=metadata, storage=storage,
                                   redirect_handler=redirect_handler, callback_handler=callback_handler,
                                   client_metadata_url=client_metadata_url)
    refreshes_before = rig.entra.counts["refresh_token"]

    async def scenario():
        async with httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30.0), event_hooks={"request": [record]}) as http:
            async with Client(streamable_http_client(f"{rig.gateway}/mcp", http_client=http), cache=None) as client:
                names = [t.name for t in (await client.list_tools()).tools]
                who = (await client.call_tool("whoami", {})).structured_content
                first = storage.tokens
                if restart_before == "refresh":
                    rig.restart()
                provider.context.token_expiry_time = time.time() - 1  # the access token has run out
                again = (await client.call_tool("whoami", {})).structured_content
                return names, who, first, again

    names, who, first, again = anyio.run(scenario)
    assert {"whoami", "server_info"} <= set(names), names
    for identity in (who, again):
        dumped = json.dumps(identity)
        assert identity["authenticated"] is True and ALICE.oid in dumped and TENANT_A in dumped, identity
    assert len(consent) == 1 and consent[0].client_name == "E2E MCP client", consent
    assert consent[0].redirect_host == "127.0.0.1:33418"
    assert rig.entra.counts["refresh_token"] == refreshes_before + 1, "the refresh reached Entra through the front"
    grants = [f.get("grant_type") for f in sent]
    assert grants == ["authorization_code", "refresh_token"], grants
    assert storage.tokens.refresh_token.startswith("mcpr_") and storage.tokens.refresh_token != first.refresh_token
    assert storage.tokens.access_token != first.access_token
    for a in answers:
        rig.remember(a.get("code"))
    for f in sent:
        rig.remember(f.get("code"), f.get("code_verifier"), f.get("refresh_token"))
    for t in storage.history:
        rig.remember(t.access_token, t.refresh_token)
    return {"client_id": storage.client_info.client_id, "refresh_token": storage.tokens.refresh_token}


def test_the_mcp_client_registers_signs_in_calls_tools_and_refreshes_across_a_restart(rig):
    result = provider_flow(rig, client_metadata_url=None, restart_before="code")
    assert result["client_id"].startswith("mcpc_"), result


def test_the_mcp_client_with_a_metadata_document_client_id_survives_a_restart_before_refresh(rig):
    url = rig.documents.put(f"/clients/{rig.stack.server}/mcp-client.json", {
        "client_id": f"{rig.documents.base_url}/clients/{rig.stack.server}/mcp-client.json",
        "client_name": "E2E MCP client", "redirect_uris": [CLIENT_REDIRECT.format(port=33418)],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none"})
    result = provider_flow(rig, client_metadata_url=url, restart_before="refresh")
    assert result["client_id"] == url
    assert f"/clients/{rig.stack.server}/mcp-client.json" in rig.documents.fetches, "fetched over TLS with the private CA"


# ---------------------------------------------------------------- 3. attack cases


def test_metadata_documents_advertise_the_front(rig):
    doc = auth_server_metadata(rig.gateway)
    assert doc["issuer"] == rig.issuer
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True
    with httpx2.Client(timeout=10) as http:
        prm = http.get(f"{rig.gateway}/.well-known/oauth-protected-resource/mcp").json()
    assert prm["authorization_servers"] == [rig.issuer], prm


def test_an_unregistered_or_altered_redirect_uri_gets_a_page_never_a_redirect(rig):
    client_id, redirect_uri = registered_client(rig)
    _, challenge = pkce()
    browser = rig.browser()
    for wrong in ("https://attacker.example/callback", redirect_uri + "/extra", redirect_uri + "?next=https://attacker.example",
                  "http://127.0.0.1:9/callbac"):
        error_page(browser.get(authorize_url(rig, client_id, wrong, challenge)))
    error_page(browser.get(authorize_url(rig, "mcpc_" + "0" * 32, redirect_uri, challenge)))
    # A loopback redirect may change its port (RFC 8252 §7.3): that one is trusted.
    error_redirect(rig, browser.get(authorize_url(rig, client_id, "http://127.0.0.1:10/callback", None)),
                   "http://127.0.0.1:10/callback", "invalid_request")


def test_pkce_is_required_as_s256_and_checked(rig):
    client_id, redirect_uri = registered_client(rig)
    verifier, challenge = pkce()
    browser = rig.browser()
    error_redirect(rig, browser.get(authorize_url(rig, client_id, redirect_uri, None)), redirect_uri, "invalid_request")
    error_redirect(rig, browser.get(authorize_url(rig, client_id, redirect_uri, verifier, code_challenge_method="plain")),
                   redirect_uri, "invalid_request")
    code, verifier = signed_in_code(rig, client_id, redirect_uri)
    oauth_error(redeem(rig, client_id, redirect_uri, code, pkce()[0]), 400, "invalid_grant")
    oauth_error(redeem(rig, client_id, redirect_uri, code, verifier), 400, "invalid_grant")  # a code is tried once


def test_state_is_required(rig):
    client_id, redirect_uri = registered_client(rig)
    _, challenge = pkce()
    error_redirect(rig, rig.browser().get(authorize_url(rig, client_id, redirect_uri, challenge, state=None)),
                   redirect_uri, "invalid_request", state=None)


def test_a_reused_code_is_refused_and_revokes_its_grant(rig):
    client_id, redirect_uri = registered_client(rig)
    code, verifier = signed_in_code(rig, client_id, redirect_uri)
    first = redeem(rig, client_id, redirect_uri, code, verifier)
    assert first.status_code == 200, first.text
    tokens = first.json()
    assert tokens["token_type"] == "Bearer" and tokens["refresh_token"].startswith("mcpr_"), tokens
    assert first.headers["cache-control"] == "no-store"
    oauth_error(redeem(rig, client_id, redirect_uri, code, verifier), 400, "invalid_grant")
    oauth_error(refresh(rig, client_id, tokens["refresh_token"]), 400, "invalid_grant")


def test_a_code_redeemed_by_another_client_is_refused(rig):
    client_id, redirect_uri = registered_client(rig)
    other_id, _ = registered_client(rig)
    code, verifier = signed_in_code(rig, client_id, redirect_uri)
    oauth_error(redeem(rig, other_id, redirect_uri, code, verifier), 400, "invalid_grant")


def test_a_confidential_client_must_authenticate(rig):
    client_id, redirect_uri = registered_client(rig, token_endpoint_auth_method="client_secret_basic")
    code, verifier = signed_in_code(rig, client_id, redirect_uri)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    reply = token_request(rig.gateway, {**form, "client_id": client_id})
    oauth_error(reply, 401, "invalid_client")
    reply = token_request(rig.gateway, form, auth=(client_id, "not-the-secret"))
    oauth_error(reply, 401, "invalid_client")
    assert reply.headers["www-authenticate"].startswith("Basic"), reply.headers


def test_the_consent_form_needs_its_csrf_token(rig):
    client_id, redirect_uri = registered_client(rig)
    _, challenge = pkce()
    browser = rig.browser()
    form = browser.consent_form(browser.get(authorize_url(rig, client_id, redirect_uri, challenge)))
    assert form is not None and set(form.fields) == {"request", "csrf"}, form
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    consent = f"{rig.gateway}/oauth/consent"
    error_page(browser.post(consent, {"request": form.fields["request"], "decision": "allow"}), 403)
    other = browser.consent_form(browser.get(authorize_url(rig, client_id, redirect_uri, challenge)))
    error_page(browser.post(consent, {"request": form.fields["request"], "csrf": other.fields["csrf"], "decision": "allow"}), 403)
    # The page's own form, fetched by one party and posted from another browser (a victim's): refused.
    error_page(rig.browser().post(consent, {**other.fields, "decision": "allow"}), 403)
    assert "__Host-mcp_consent" not in browser.cookies, "no consent was remembered"
    # A denied request stays denied: the same form cannot be sent again with Allow.
    denied = browser.post(consent, {**other.fields, "decision": "deny"})
    error_redirect(rig, denied, redirect_uri, "access_denied")
    error_page(browser.post(consent, {**other.fields, "decision": "allow"}))


def test_a_consent_cookie_covers_only_its_own_client(rig):
    client_id, redirect_uri = registered_client(rig)
    other_id, _ = registered_client(rig, client_name="Another client")
    browser = rig.browser()
    signed_in_code(rig, client_id, redirect_uri, browser)
    assert "__Host-mcp_consent" in browser.cookies, browser.cookies
    _, challenge = pkce()
    # The same client again goes straight to Entra...
    again = browser.get(authorize_url(rig, client_id, redirect_uri, challenge))
    assert again.status_code == 302 and "/oauth2/v2.0/authorize?" in again.headers["location"], again.headers
    # ...another client with the same cookie sees the consent page.
    form = browser.consent_form(browser.get(authorize_url(rig, other_id, redirect_uri, challenge)))
    assert form is not None and form.client_name == "Another client", form


def test_metadata_documents_that_lie_are_too_big_or_on_private_hosts_are_refused(rig):
    docs, server = rig.documents, rig.stack.server
    redirect_uri = CLIENT_REDIRECT.format(port=9)
    _, challenge = pkce()
    browser = rig.browser()

    def document(path: str, **over) -> str:
        url = f"{docs.base_url}/attack/{server}/{path}"
        docs.put(f"/attack/{server}/{path}", {"client_id": url, "client_name": "Doc client", "redirect_uris": [redirect_uri],
                                              "token_endpoint_auth_method": "none", **over})
        return url

    liar = document("liar.json", client_id=f"{docs.base_url}/attack/{server}/someone-else.json")
    error_page(browser.get(authorize_url(rig, liar, redirect_uri, challenge)))
    big = f"{docs.base_url}/attack/{server}/big.json"
    docs.put(f"/attack/{server}/big.json", {"client_id": big, "client_name": "Big", "redirect_uris": [redirect_uri],
                                            "padding": "x" * (DOCUMENT_MAX_BYTES + 100)})
    error_page(browser.get(authorize_url(rig, big, redirect_uri, challenge)))
    good = document("good.json")
    form = browser.consent_form(browser.get(authorize_url(rig, good, redirect_uri, challenge)))
    assert form is not None and form.client_name == "Doc client", "the same server's honest document is accepted"
    # Without the testing flag, a document on a loopback address is never fetched.
    fetched = len(docs.fetches)
    error_page(browser.get(authorize_url(rig, good, redirect_uri, challenge, base=STRICT)))
    assert len(docs.fetches) == fetched, "the strict instance did not connect to a loopback address"


def test_a_registration_flood_is_rate_limited(rig):
    for _ in range(STRICT_REGISTRATIONS_PER_HOUR):
        assert register(rig.gateway, STRICT).status_code == 201
    reply = register(rig.gateway, STRICT)
    assert reply.status_code == 429, reply.text
    assert int(reply.headers["retry-after"]) >= 1, reply.headers
    assert reply.json()["error"] == "invalid_client_metadata"


def test_refresh_token_reuse_after_the_grace_window_revokes_the_grant(rig):
    client_id, redirect_uri = registered_client(rig)
    code, verifier = signed_in_code(rig, client_id, redirect_uri)
    tokens = redeem(rig, client_id, redirect_uri, code, verifier).json()
    first = tokens["refresh_token"]
    second = refresh(rig, client_id, first)
    assert second.status_code == 200, second.text
    # A concurrent refresh with the previous token, within the grace window, still works.
    late = refresh(rig, client_id, first)
    assert late.status_code == 200, late.text
    current = late.json()["refresh_token"]
    time.sleep(REFRESH_GRACE_SECONDS + 1)
    oauth_error(refresh(rig, client_id, first), 400, "invalid_grant")
    oauth_error(refresh(rig, client_id, current), 400, "invalid_grant")  # the whole grant went
    oauth_error(refresh(rig, client_id, second.json()["refresh_token"]), 400, "invalid_grant")


def test_a_user_from_a_tenant_that_is_not_allowed_never_gets_a_code(rig):
    client_id, redirect_uri = registered_client(rig)
    _, challenge = pkce()
    rig.entra.signed_in_user = MALLORY.oid
    try:
        answer = rig.browser().authorize(authorize_url(rig, client_id, redirect_uri, challenge), redirect_uri)
    finally:
        rig.entra.signed_in_user = ALICE.oid
    assert answer["error"] == "access_denied" and "code" not in answer, answer
    assert answer["state"] == "st" and answer["iss"] == rig.issuer, answer


# ---------------------------------------------------------------- 2. the consent page in Chromium


class RedirectTarget:
    """The client's redirect URI: a page that records what it was called with."""

    def __init__(self):
        target = self
        self.queries: list[dict[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.startswith("/callback"):  # not the favicon
                    target.queries.append(query_of(self.path))
                body = b"<!doctype html><title>Signed in</title><p id=done>You may close this window.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"


@pytest.fixture(scope="module")
def chromium():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed (scripts/deps installs it in the venv)")
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,900"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    except Exception as exc:  # noqa: BLE001 - any reason chromium cannot start
        pytest.skip(f"headless chromium cannot start here: {exc}")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_the_consent_page_in_chromium_allow_and_deny(rig, chromium, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    target = RedirectTarget()
    try:
        client_id, _ = registered_client(rig, target.uri, client_name="Chromium Test Client")
        chromium.delete_all_cookies()
        for decision in ("deny", "allow"):
            verifier, challenge = pkce()
            state = "st-" + decision
            chromium.get(authorize_url(rig, client_id, target.uri, challenge, state=state))
            assert chromium.find_element(By.ID, "client-name").text == "Chromium Test Client"
            host = urllib.parse.urlsplit(target.uri).netloc
            assert chromium.find_element(By.ID, "redirect-host").text == host
            assert target.uri in chromium.find_element(By.ID, "redirect-uri").text
            shot = tmp_path / f"consent-{rig.stack.server}-{decision}.png"
            chromium.save_screenshot(str(shot))
            assert shot.stat().st_size > 1000
            count = len(target.queries)
            chromium.find_element(By.ID, decision).click()
            WebDriverWait(chromium, 20).until(lambda d: len(target.queries) > count)
            answer = target.queries[-1]
            assert answer["state"] == state and answer["iss"] == rig.issuer, answer
            if decision == "deny":
                assert answer["error"] == "access_denied" and "code" not in answer, answer
            else:
                assert "code" in answer and "error" not in answer, answer
                rig.remember(answer["code"], verifier)
                tokens = redeem(rig, client_id, target.uri, answer["code"], verifier)
                assert tokens.status_code == 200, tokens.text
        print(f"consent page screenshots in {tmp_path}")
    finally:
        target.server.shutdown()


# ---------------------------------------------------------------- 4. no secrets in logs or audit


def test_no_code_token_verifier_or_secret_in_logs_or_audit(rig):
    seen = set(rig.seen) | {SECRET}
    seen.update(rig.entra.sign_ins.issued_secrets())
    assert len(seen) > 20, "the flows above ran and their secrets were collected"
    logs, audit = responder_logs(rig.stack), audit_export(rig.stack)
    assert "sign-in complete; code issued" in logs, "the logs hold the front's events"
    assert ALICE.oid in audit, "the audit trail holds the tool calls"
    for name, haystack in (("logs", logs), ("audit", audit)):
        leaked = [v[:12] + "…" for v in seen if v in haystack]
        assert not leaked, f"{len(leaked)} secrets in the {name}: {leaked}"


# ---------------------------------------------------------------- 5. the resource server alone


def test_an_instance_without_oauth_is_the_plain_resource_server(rig, fake):
    with httpx2.Client(timeout=10) as http:
        prm = http.get(f"{rig.gateway}/.well-known/oauth-protected-resource{PLAIN}/mcp")
        assert prm.status_code == 200, prm.text
        assert prm.json()["authorization_servers"] == [f"http://127.0.0.1:{fake[1]}/{TENANT_A}/v2.0"], prm.json()
        for path in ("/oauth/register", "/oauth/authorize", "/oauth/token", "/oauth/callback", "/oauth/consent", "/oauth/revoke"):
            assert http.get(f"{rig.gateway}{PLAIN}{path}").status_code == 404, path
        assert http.get(f"{rig.gateway}/.well-known/oauth-authorization-server{PLAIN}").status_code == 404
        challenge = http.post(f"{rig.gateway}{PLAIN}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              headers={"Accept": "application/json, text/event-stream"})
    assert challenge.status_code == 401
    assert f'resource_metadata="{rig.gateway}/.well-known/oauth-protected-resource{PLAIN}/mcp"' in challenge.headers["www-authenticate"]
