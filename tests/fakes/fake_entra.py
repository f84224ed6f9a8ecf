"""A fake Entra ID v2: OpenID discovery, the signing keys, the authorize endpoint and the token endpoint.

It follows the documented request and error shapes (v2-oauth2-on-behalf-of-flow,
v2-oauth2-client-creds-grant-flow, v2-oauth2-auth-code-flow, refresh-tokens, reference-error-codes):

- POST /{tenant}/oauth2/v2.0/token: On-Behalf-Of (grant_type jwt-bearer with
  requested_token_use=on_behalf_of) and client credentials, authenticated by a client secret or by a
  certificate client assertion (PS256/RS256, checked with the certificate's public key when one is
  configured). The user assertion must be a token for the gateway's audience in the same tenant.
- The interactive sign-in of the gateway as a confidential web client: GET /{tenant}/oauth2/v2.0/authorize
  signs in a configured test user without a page (auto-approval) and sends the browser back with a code;
  the token endpoint redeems it (`authorization_code`) and refreshes (`refresh_token`).
- GET /{tenant}/v2.0/.well-known/openid-configuration and /{tenant}/discovery/v2.0/keys: the
  documents the gateway's token verifier reads. Interactive tokens are RS256-signed with a key made
  at start (standard library RSA), so the gateway verifies them as it verifies Entra's.

Entra's deviations from what MCP clients expect are kept on purpose, because the authorization front
exists to hide them: the discovery document has no `code_challenge_methods_supported`; the RFC 8707
`resource` parameter is refused unless it names the scopes' API (AADSTS9010010); the authorization
response carries no RFC 9207 `iss`; a redirect URI must be registered exactly (only a `localhost`
port is ignored) or the browser gets an error page instead of a redirect (AADSTS50011); a code is
single use (AADSTS54005); a scope without a resource prefix is looked up on Microsoft Graph
(AADSTS650053); and a refresh token is replaced on every use while the old one keeps working.
Errors come back as Entra writes them: `error`, `error_description` starting with the AADSTS code,
`error_codes`, `timestamp`, `trace_id`, `correlation_id` (and `suberror`, `claims` where Entra adds them).

Tests steer it through `EntraBehaviour` (the fake runs in the test's process): `redirect_uris` of the
gateway app, the `apis` it may get tokens for, the `users` who can sign in and which one does
(`signed_in_user`, or a `login_hint`), their `roles` and consented `scopes`, `deny_consent`,
`code_lifetime`; and read back `counts` (authorize calls, tokens per grant, requests that carried
`resource`), `authorize_requests`, and `sign_ins` (revoke a user's refresh tokens, list every code and
token issued for leak checks).

Access tokens are JWT-shaped and name their tenant and user; the fake Power BI API
(fake_powerbi.py) accepts only tokens recorded in the shared `TokenRegistry`.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Tenant segments that sign in users of any organisation (the interactive flow only).
MULTI_TENANT_SEGMENTS = ("organizations", "common")
OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
# Where Entra looks up a scope that names no resource.
MICROSOFT_GRAPH_APP = "00000003-0000-0000-c000-000000000000"
INTERACTIVE_GRANTS = ("authorization_code", "refresh_token")
RESPONSE_MODES = ("query", "fragment", "form_post")
# Entra links every error to its lookup page.
ERROR_LOOKUP = "https://login.microsoftonline.com/error?code="


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token: str) -> dict | None:
    """The payload of a compact JWS, without checking the signature (the fake trusts the gateway
    to have verified its incoming token; it checks what Entra checks: audience, tenant, expiry)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        value = json.loads(b64url_decode(parts[1]))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ---------------------------------------------------------------- the signing key


def _probable_prime(n: int, rounds: int = 24) -> bool:
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for i in range(rounds):  # Miller-Rabin
        x = pow(2 if i == 0 else secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


_SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p ** 0.5) + 1, 2))]


class RSAKey:
    """An RSA key pair that signs RS256 JWTs (RSASSA-PKCS1-v1_5 with SHA-256), standard library
    only. 2048 bits: the gateway refuses smaller keys, as it should refuse them from Entra."""
    PUBLIC_EXPONENT = 65537
    SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")

    def __init__(self, bits: int = 2048):
        def prime() -> int:
            while True:  # the top two bits set make the product exactly `bits` long
                c = secrets.randbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
                if c % self.PUBLIC_EXPONENT != 1 and _probable_prime(c):
                    return c
        p, q = prime(), prime()
        while q == p:
            q = prime()
        self.n = p * q
        d = pow(self.PUBLIC_EXPONENT, -1, (p - 1) * (q - 1))
        self._crt = (p, q, d % (p - 1), d % (q - 1), pow(q, -1, p))
        self.size = (bits + 7) // 8
        self.kid = b64url(hashlib.sha256(self.n.to_bytes(self.size, "big")).digest())[:27]

    def sign(self, message: bytes) -> bytes:
        digest = self.SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        m = int.from_bytes(b"\x00\x01" + b"\xff" * (self.size - len(digest) - 3) + b"\x00" + digest, "big")
        p, q, dp, dq, qinv = self._crt
        s1, s2 = pow(m, dp, p), pow(m, dq, q)
        return (s2 + (qinv * (s1 - s2) % p) * q).to_bytes(self.size, "big")

    def jwt(self, claims: dict) -> str:
        header = b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": self.kid}).encode())
        body = f"{header}.{b64url(json.dumps(claims).encode())}"
        return f"{body}.{b64url(self.sign(body.encode()))}"

    def jwk(self, issuer: str) -> dict:
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": b64url(self.n.to_bytes(self.size, "big")),
                "e": b64url(self.PUBLIC_EXPONENT.to_bytes(3, "big")), "issuer": issuer}


@dataclass
class TokenRegistry:
    """Tokens the fake Entra issued, shared with the fake Power BI API."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: dict[str, dict] = field(default_factory=dict)

    def issue(self, claims: dict, key: RSAKey | None = None) -> str:
        """Signed by `key` when the gateway must verify the token itself; otherwise (tokens for
        Power BI and backends, which only the fakes read) the signature is random bytes."""
        if key is not None:
            token = key.jwt(claims)
        else:
            header = b64url(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "fake"}).encode())
            token = f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(secrets.token_bytes(32))}"
        with self.lock:
            self.issued[token] = claims
        return token

    def lookup(self, token: str) -> dict | None:
        with self.lock:
            claims = self.issued.get(token)
        if claims is None or claims.get("exp", 0) < time.time():
            return None
        return claims


# ---------------------------------------------------------------- interactive sign-in state


@dataclass
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    tenant: str  # the tenant segment of the authorize URL; the code is redeemed under the same one
    user_oid: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str
    nonce: str | None
    expires: float
    redeemed: bool = False


@dataclass
class RefreshGrant:
    """What a refresh token stands for: a user and a client (not a resource, not a tenant)."""
    client_id: str
    user_oid: str
    scope: str
    issued: float
    expires: float
    revoked: bool = False


@dataclass
class SignInStore:
    """Codes and refresh tokens of interactive sign-ins. A used refresh token is not marked:
    Entra replaces refresh tokens on every use but does not revoke the old ones."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    id_tokens: list[str] = field(default_factory=list)

    def new_code(self, code: AuthorizationCode) -> str:
        value = "1.A" + secrets.token_urlsafe(96)
        with self.lock:
            self.codes[value] = code
        return value

    def new_refresh_token(self, grant: RefreshGrant) -> str:
        value = "1.A" + secrets.token_urlsafe(160)
        with self.lock:
            self.refresh_tokens[value] = grant
        return value

    def revoke_user(self, oid: str) -> None:
        """An admin revokes the user's sessions (revokeSignInSessions): every refresh token dies."""
        with self.lock:
            for grant in self.refresh_tokens.values():
                if grant.user_oid == oid:
                    grant.revoked = True

    def issued_secrets(self) -> list[str]:
        """Every code, refresh token and ID token handed out, for checks that none is logged."""
        with self.lock:
            return [*self.codes, *self.refresh_tokens, *self.id_tokens]


# ---------------------------------------------------------------- configuration


@dataclass
class EntraUser:
    """An account that can sign in interactively."""
    oid: str
    tid: str
    preferred_username: str = "user@contoso.example"
    name: str = "Test User"
    # App roles assigned to the user on the API (the token's `roles`).
    roles: list[str] = field(default_factory=list)
    # Delegated scopes (names such as "mcp.tools") consented for this user; their tokens carry only
    # these of the ones asked for. None: whatever the request asks is consented on the spot.
    scopes: list[str] | None = None


@dataclass
class EntraAPI:
    """An API app registration: the resource interactive sign-ins get access tokens for.
    Scopes are named `{identifier}/{scope}`, the identifier being an App ID URI or the client id."""
    client_id: str
    identifier_uris: list[str]
    scopes: list[str]
    # api.requestedAccessTokenVersion: 2 gives aud = client id and a login-host issuer;
    # 1 gives aud = the identifier the scopes used and the sts.windows.net issuer.
    token_version: int = 2

    def identified_by(self, identifier: str) -> bool:
        return identifier == self.client_id or identifier in self.identifier_uris


@dataclass
class EntraBehaviour:
    client_id: str
    client_secret: str | None
    resource: str
    gateway_audiences: list[str]
    # The gateway app's own object id in each tenant (its service principal).
    service_principal_oid: str = "5e5e5e5e-0000-4000-8000-00000000005e"
    # Public key PEM of the gateway's certificate, to check client assertions.
    certificate_public_key_pem: bytes | None = None
    # Tenants whose admin has not consented to the gateway's Power BI access.
    consent_missing_tenants: set[str] = field(default_factory=set)
    # Users for whom Conditional Access wants more (interaction_required with claims).
    interaction_required_users: set[str] = field(default_factory=set)
    token_lifetime: int = 3600
    counts: dict[str, int] = field(default_factory=lambda: {
        "obo": 0, "client_credentials": 0, "errors": 0,
        # The interactive flow: authorize calls, tokens issued per grant, requests that carried `resource`.
        "authorize": 0, "authorization_code": 0, "refresh_token": 0, "resource_sent": 0})

    # Interactive sign-in; `client_id` is the confidential web client, with these redirect URIs.
    redirect_uris: list[str] = field(default_factory=list)
    apis: list[EntraAPI] = field(default_factory=list)
    users: list[EntraUser] = field(default_factory=list)
    # The account the browser is signed in as (an oid); None: the first of `users`. A `login_hint`
    # naming another account's preferred_username signs that one in instead.
    signed_in_user: str | None = None
    # The user presses Cancel on Entra's consent prompt.
    deny_consent: bool = False
    code_lifetime: int = 600
    refresh_token_lifetime: int = 90 * 86400
    # The query of every authorize request, in order (state, nonce, PKCE challenge, resource...).
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    sign_ins: SignInStore = field(default_factory=SignInStore)

    def account(self, oid: str) -> EntraUser | None:
        return next((u for u in self.users if u.oid == oid), None)

    def signing_in(self, login_hint: str | None) -> EntraUser | None:
        if login_hint:
            return next((u for u in self.users if u.preferred_username.lower() == login_hint.lower()), None)
        if self.signed_in_user is not None:
            return self.account(self.signed_in_user)
        return self.users[0] if self.users else None

    def redirect_registered(self, uri: str) -> bool:
        """Exact, case-sensitive; only the port of an http://localhost redirect URI is ignored."""
        if uri in self.redirect_uris:
            return True
        asked = urllib.parse.urlsplit(uri)
        if asked.scheme != "http" or asked.hostname != "localhost":
            return False
        for registered in map(urllib.parse.urlsplit, self.redirect_uris):
            if registered.scheme == "http" and registered.hostname == "localhost" and \
                    (registered.path, registered.query) == (asked.path, asked.query):
                return True
        return False


CLAIMS_CHALLENGE = json.dumps({"access_token": {"capolids": {"essential": True, "values": ["c0ffee00-0000-4000-8000-000000000001"]}}})


class EntraError(Exception):
    """An error of the interactive flow: a JSON answer at the token endpoint, an error redirect at
    the authorize endpoint."""

    def __init__(self, error: str, code: int, text: str, status: int = 400, **extra):
        super().__init__(f"AADSTS{code}: {text}")
        self.error, self.code, self.text, self.status, self.extra = error, code, text, status, extra


class SignInPageError(EntraError):
    """A failure of the account itself (unknown user, wrong tenant): Entra shows it on its own page."""

    def __init__(self, code: int, text: str):
        super().__init__("invalid_request", code, text)


def require(params: dict[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise EntraError("invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def malformed_grant() -> EntraError:
    """Entra's answer to a code or refresh token it never issued (or issued to another client)."""
    return EntraError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")


def revoked_grant() -> EntraError:
    return EntraError("invalid_grant", 50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
                                              "The user might have changed or reset their password.")


@dataclass
class ScopeRequest:
    """A scope parameter resolved the way Entra does: OpenID scopes, plus scopes of at most one API
    (Entra's token endpoint takes one resource; its authorize endpoint could ask consent for several,
    the fake refuses that there too)."""
    text: str
    oidc: list[str]
    api: EntraAPI | None = None
    identifier: str | None = None  # how the scopes named the API
    names: list[str] = field(default_factory=list)

    @staticmethod
    def resolve(text: str, apis: list[EntraAPI], tenant: str) -> "ScopeRequest":
        request = ScopeRequest(text=text, oidc=[])
        for scope in text.split():
            if scope in OIDC_SCOPES:
                if scope not in request.oidc:
                    request.oidc.append(scope)
                continue
            identifier, _, name = scope.rpartition("/")
            if not identifier:
                raise EntraError("invalid_client", 650053, f"The application 'mcp-fcgi' asked for scope '{scope}' that doesn't exist on the resource '{MICROSOFT_GRAPH_APP}'. Contact the app vendor.")
            api = next((a for a in apis if a.identified_by(identifier)), None)
            if api is None:
                raise EntraError("invalid_resource", 500011, f"The resource principal named {identifier} was not found in the tenant named {tenant}. "
                                                             "This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. "
                                                             "You might have sent your authentication request to the wrong tenant.")
            if request.api is not None and request.identifier != identifier:
                raise EntraError("invalid_scope", 28000, f"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {text} is not valid.")
            if name != ".default" and name not in api.scopes:
                raise EntraError("invalid_client", 650053, f"The application 'mcp-fcgi' asked for scope '{name}' that doesn't exist on the resource '{api.client_id}'. Contact the app vendor.")
            request.api, request.identifier = api, identifier
            if name not in request.names:
                request.names.append(name)
        return request

    def check_resource(self, params: dict[str, str]) -> None:
        """RFC 8707 `resource` is refused unless it is exactly the identifier the scopes named."""
        if "resource" in params and (self.identifier is None or params["resource"] != self.identifier):
            raise EntraError("invalid_request", 9010010, "The resource parameter provided in the request doesn't match with the requested scopes.")

    def granted(self, user: EntraUser) -> list[str]:
        """The API scopes the token carries: `.default` stands for all of them."""
        if self.api is None:
            return []
        names = list(self.api.scopes) if ".default" in self.names else self.names
        return [n for n in names if user.scopes is None or n in user.scopes]


# ---------------------------------------------------------------- the server


class EntraHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeEntra/1"
    # Headers and body go out in two writes: without TCP_NODELAY the second waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: pytest shows failures, not traffic
        pass

    @property
    def behaviour(self) -> EntraBehaviour:
        return self.server.behaviour  # type: ignore[attr-defined]

    @property
    def registry(self) -> TokenRegistry:
        return self.server.registry  # type: ignore[attr-defined]

    @property
    def signing_key(self) -> RSAKey:
        return self.server.signing_key  # type: ignore[attr-defined]

    @property
    def base_url(self) -> str:
        return f"http://{self.headers.get('Host', '')}"

    def count(self, kind: str) -> None:
        with self.server.lock:  # type: ignore[attr-defined]
            self.behaviour.counts[kind] += 1

    def send(self, status: int, content_type: str, data: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def reply(self, status: int, body: dict) -> None:
        self.send(status, "application/json; charset=utf-8", json.dumps(body).encode())

    def error(self, status: int, error: str, code: int, text: str, **extra) -> None:
        self.count("errors")
        body = {"error": error, **described(code, text), "error_codes": [code]}
        body.update(extra)
        self.reply(status, body)

    def error_page(self, code: int, text: str) -> None:
        """What the browser shows when Entra cannot trust the request enough to redirect back."""
        self.count("errors")
        page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>"
                f"<body><h1>Sign in</h1><p>Sorry, but we're having trouble signing you in.</p>"
                f"<p id=\"error\">AADSTS{code}: {html.escape(text)}</p><p>Trace ID: {uuid.uuid4()}</p></body></html>")
        self.send(400, "text/html; charset=utf-8", page.encode())

    # ------------------------------------------------------------ GET: discovery, keys, authorize

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        if m := re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", url.path):
            return self.discovery(m.group(1).lower())
        if m := re.fullmatch(r"/([^/]+)/discovery/v2\.0/keys", url.path):
            return self.keys(m.group(1).lower())
        if m := re.fullmatch(r"/([^/]+)/oauth2/v2\.0/authorize", url.path):
            return self.authorize(m.group(1).lower(), query)
        self.reply(405, {"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST requests."})

    def known_tenant(self, tenant: str) -> bool:
        return bool(GUID.match(tenant)) or tenant in MULTI_TENANT_SEGMENTS

    def tenant_not_found(self, tenant: str) -> str:
        return f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."

    def discovery(self, tenant: str) -> None:
        if not self.known_tenant(tenant):
            return self.error(400, "invalid_tenant", 90002, self.tenant_not_found(tenant))
        base, issuer_tenant = self.base_url, tenant if GUID.match(tenant) else "{tenantid}"
        # No code_challenge_methods_supported, as Entra's own document (PKCE works all the same).
        self.reply(200, {
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                                 "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "tenant_region_scope": None, "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net", "msgraph_host": "graph.microsoft.com",
        })

    def keys(self, tenant: str) -> None:
        if not self.known_tenant(tenant):
            return self.error(400, "invalid_tenant", 90002, self.tenant_not_found(tenant))
        # Keys name the issuer they sign for: templated for the multi-tenant segments.
        issuer_tenant = tenant if GUID.match(tenant) else "{tenantid}"
        self.reply(200, {"keys": [self.signing_key.jwk(f"{self.base_url}/{issuer_tenant}/v2.0")]})

    def authorize(self, tenant: str, query: dict[str, str]) -> None:
        b = self.behaviour
        with self.server.lock:  # type: ignore[attr-defined]
            b.counts["authorize"] += 1
            b.counts["resource_sent"] += "resource" in query
            b.authorize_requests.append(dict(query))
        # Until the client and its redirect URI are trusted, errors are pages, never redirects.
        if not self.known_tenant(tenant):
            return self.error_page(90002, self.tenant_not_found(tenant))
        client_id, redirect_uri = query.get("client_id"), query.get("redirect_uri")
        if not client_id:
            return self.error_page(900144, "The request body must contain the following parameter: 'client_id'.")
        if client_id != b.client_id:
            return self.error_page(700016, f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                                           "This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. "
                                           "You may have sent your authentication request to the wrong tenant.")
        if not redirect_uri:
            return self.error_page(900971, "No reply address provided.")
        if not b.redirect_registered(redirect_uri):
            return self.error_page(50011, f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. "
                                          "Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. "
                                          "Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.")
        asked_mode, state = query.get("response_mode", "query"), query.get("state")
        mode = asked_mode if asked_mode in RESPONSE_MODES else "query"
        try:
            if asked_mode != mode:
                raise EntraError("invalid_request", 70007, f"The application returned an unsupported response_mode '{asked_mode}'.")
            code = self.authorize_code(tenant, client_id, redirect_uri, query)
        except SignInPageError as e:
            return self.error_page(e.code, e.text)
        except EntraError as e:
            self.count("errors")
            description = described(e.code, e.text)
            return self.back_to_client(redirect_uri, mode, {"error": e.error, "error_description": description["error_description"],
                                                             "error_uri": description["error_uri"], **e.extra, "state": state})
        self.back_to_client(redirect_uri, mode, {"code": code, "state": state})  # no iss: Entra sends none

    def authorize_code(self, tenant: str, client_id: str, redirect_uri: str, query: dict[str, str]) -> str:
        """Checks the request the way Entra does once the redirect URI is trusted, signs the user in
        and approves; returns the code. Raises EntraError for an error redirect."""
        b = self.behaviour
        require(query, "response_type")
        response_type = query["response_type"]
        if response_type != "code":
            raise EntraError("unsupported_response_type", 700054, f"response_type '{response_type}' is not enabled for the application.")
        scope = query.get("scope", "").strip()
        require({"scope": scope}, "scope")
        requested = ScopeRequest.resolve(scope, b.apis, tenant)
        requested.check_resource(query)
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method", "plain")
        if challenge is not None:
            if method not in ("S256", "plain"):
                raise EntraError("invalid_request", 50149, "Invalid Code_Challenge_method parameter.")
            if not 43 <= len(challenge) <= 128:
                raise EntraError("invalid_request", 501491, "Invalid size of Code_Challenge parameter.")
        user = b.signing_in(query.get("login_hint"))
        if user is None:
            raise SignInPageError(50034, f"The user account {query.get('login_hint') or '(none signed in)'} does not exist in the '{tenant}' directory. To sign into this application, the account must be added to the directory.")
        if GUID.match(tenant) and user.tid.lower() != tenant:
            raise SignInPageError(50020, f"User account '{user.preferred_username}' from identity provider 'https://sts.windows.net/{user.tid}/' does not exist in tenant '{tenant}' and cannot access the application '{client_id}'(mcp-fcgi) in that tenant. "
                                         "The account needs to be added as an external user in the tenant first. "
                                         "Sign out and sign in again with a different Azure Active Directory user account.")
        if b.deny_consent:
            raise EntraError("access_denied", 65004, "User declined to consent to access the app.", error_subcode="cancel")
        return b.sign_ins.new_code(AuthorizationCode(
            client_id=client_id, redirect_uri=redirect_uri, tenant=tenant, user_oid=user.oid, scope=scope,
            code_challenge=challenge, code_challenge_method=method, nonce=query.get("nonce"),
            expires=time.time() + b.code_lifetime))

    def back_to_client(self, redirect_uri: str, mode: str, params: dict[str, str | None]) -> None:
        pairs = [(k, v) for k, v in params.items() if v is not None]
        if mode == "form_post":
            fields = "".join(f"<input type=\"hidden\" name=\"{html.escape(k)}\" value=\"{html.escape(v)}\">" for k, v in pairs)
            page = (f"<!DOCTYPE html><html><head><title>Working...</title></head><body onload=\"document.forms[0].submit()\">"
                    f"<form method=\"POST\" action=\"{html.escape(redirect_uri)}\">{fields}<noscript><input type=\"submit\"></noscript></form></body></html>")
            return self.send(200, "text/html; charset=utf-8", page.encode())
        separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
        self.send(302, "text/html; charset=utf-8", b"", (("Location", redirect_uri + separator + urllib.parse.urlencode(pairs)),))

    # ------------------------------------------------------------ POST: the token endpoint

    def do_POST(self):
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", self.path)
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode()
        if not m:
            return self.reply(404, {"error": "not_found"})
        tenant = m.group(1).lower()
        is_form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()} if is_form else {}
        self.merge_basic_credentials(form)
        interactive = form.get("grant_type") in INTERACTIVE_GRANTS
        if not GUID.match(tenant) and not (interactive and tenant in MULTI_TENANT_SEGMENTS):
            return self.error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if not is_form:
            return self.error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
        b = self.behaviour
        if form.get("client_id") != b.client_id:
            return self.error(400, "unauthorized_client", 700016, f"Application with identifier '{form.get('client_id')}' was not found in the directory.")
        if interactive and "client_secret" not in form and "client_assertion" not in form:
            return self.error(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
        if not self.client_authenticated(form, tenant):
            return self.error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.")
        if interactive:
            return self.interactive_grant(form, tenant)
        if form.get("scope") != f"{b.resource}/.default":
            return self.error(400, "invalid_scope", 70011, f"The provided value for the input parameter 'scope' is not valid. The scope {form.get('scope')} is not valid.")
        if tenant in b.consent_missing_tenants:
            return self.error(400, "invalid_grant", 65001, f"The user or administrator has not consented to use the application with ID '{b.client_id}' named 'mcp-fcgi'. Send an interactive authorization request for this user and resource.",
                              suberror="consent_required")
        now = int(time.time())
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            if form.get("requested_token_use") != "on_behalf_of":
                return self.error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'requested_token_use'.")
            user = jwt_claims(form.get("assertion", ""))
            if user is None:
                return self.error(400, "invalid_grant", 50027, "JWT token is invalid or malformed.")
            if user.get("aud") not in b.gateway_audiences:
                return self.error(400, "invalid_grant", 500131, "Assertion audience does not match the Client app presenting the assertion.")
            if str(user.get("tid", "")).lower() != tenant:
                return self.error(400, "invalid_grant", 50013, "Assertion failed signature validation or was issued for another tenant.")
            if user.get("exp", 0) < now:
                return self.error(400, "invalid_grant", 500133, "Assertion is not within its valid time range.")
            if user.get("idtyp") == "app" or "scp" not in user:
                return self.error(400, "unauthorized_client", 7000114, f"Application '{b.client_id}' is not allowed to make application on-behalf-of calls.")
            if user.get("oid") in b.interaction_required_users:
                return self.error(400, "interaction_required", 50079, "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication.",
                                  suberror="basic_action", claims=CLAIMS_CHALLENGE)
            claims = {"aud": b.resource, "tid": tenant, "oid": user["oid"], "appid": b.client_id, "scp": "Dataset.Read.All Workspace.Read.All",
                      "iat": now, "exp": now + b.token_lifetime, "ver": "1.0"}
            kind = "obo"
        elif grant == "client_credentials":
            claims = {"aud": b.resource, "tid": tenant, "oid": b.service_principal_oid, "appid": b.client_id, "idtyp": "app",
                      "iat": now, "exp": now + b.token_lifetime, "ver": "1.0"}
            kind = "client_credentials"
        else:
            return self.error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")
        self.count(kind)
        token = self.registry.issue(claims)
        self.reply(200, {"token_type": "Bearer", "scope": f"{b.resource}/.default", "expires_in": b.token_lifetime,
                         "ext_expires_in": b.token_lifetime, "access_token": token})

    def merge_basic_credentials(self, form: dict) -> None:
        """client_secret_basic: Entra also takes the client id and secret from an Authorization header."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except ValueError:
            return
        form.setdefault("client_id", urllib.parse.unquote_plus(user))
        form.setdefault("client_secret", urllib.parse.unquote_plus(password))

    def client_authenticated(self, form: dict, tenant: str) -> bool:
        b = self.behaviour
        if "client_secret" in form:
            return b.client_secret is not None and secrets.compare_digest(form["client_secret"], b.client_secret)
        if form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" and b.certificate_public_key_pem:
            import jwt  # PyJWT with cryptography, both in the test venv (the mcp client needs them)
            host = self.headers.get("Host", "")
            try:
                claims = jwt.decode(form.get("client_assertion", ""), b.certificate_public_key_pem, algorithms=["PS256", "RS256"],
                                    audience=f"http://{host}/{tenant}/oauth2/v2.0/token", issuer=b.client_id)
            except jwt.PyJWTError:
                return False
            return claims.get("sub") == b.client_id
        return False

    # ------------------------------------------------------------ authorization_code and refresh_token

    def interactive_grant(self, form: dict[str, str], tenant: str) -> None:
        if "resource" in form:
            self.count("resource_sent")
        try:
            if form["grant_type"] == "authorization_code":
                user, requested, nonce = self.redeem_code(form, tenant)
            else:
                user, requested, nonce = self.redeem_refresh_token(form, tenant)
        except EntraError as e:
            return self.error(e.status, e.error, e.code, e.text, **e.extra)
        self.count(form["grant_type"])
        # A refresh token comes with offline_access, and a refresh always replaces the one used.
        new_refresh_token = form["grant_type"] == "refresh_token" or "offline_access" in requested.oidc
        self.reply(200, self.token_response(user, requested, nonce, "client_assertion" in form, new_refresh_token))

    def redeem_code(self, form: dict[str, str], tenant: str) -> tuple[EntraUser, ScopeRequest, str | None]:
        b, store = self.behaviour, self.behaviour.sign_ins
        require(form, "code", "redirect_uri")
        with store.lock:  # checked and spent at once: two redemptions cannot both win
            code = store.codes.get(form["code"])
            if code is None or code.client_id != form["client_id"]:
                raise malformed_grant()
            if code.redeemed:
                raise EntraError("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
            if code.expires < time.time():
                raise EntraError("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
            if code.tenant != tenant:
                raise EntraError("invalid_grant", 700005, "Provided Authorization Code is intended to use against other tenant, thus rejected.")
            if form["redirect_uri"] != code.redirect_uri:
                raise EntraError("invalid_grant", 500112, f"The reply address '{form['redirect_uri']}' does not match the reply address '{code.redirect_uri}' provided when requesting Authorization code.")
            if code.code_challenge is not None and not pkce_matches(form.get("code_verifier"), code.code_challenge, code.code_challenge_method):
                raise EntraError("invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
            requested = ScopeRequest.resolve(form.get("scope") or code.scope, b.apis, tenant)
            requested.check_resource(form)
            user = self.current_account(code.user_oid)
            code.redeemed = True
        return user, requested, code.nonce

    def redeem_refresh_token(self, form: dict[str, str], tenant: str) -> tuple[EntraUser, ScopeRequest, None]:
        b, store = self.behaviour, self.behaviour.sign_ins
        require(form, "refresh_token")
        with store.lock:
            grant = store.refresh_tokens.get(form["refresh_token"])
        if grant is None or grant.client_id != form["client_id"]:
            raise malformed_grant()
        if grant.revoked:
            raise revoked_grant()
        if grant.expires < time.time():
            issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(grant.issued))
            raise EntraError("invalid_grant", 700082, f"The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive for {b.refresh_token_lifetime // 86400}.00:00:00.")
        # A refresh token is not bound to a resource: the scope may name any API the user consented to.
        requested = ScopeRequest.resolve(form.get("scope") or grant.scope, b.apis, tenant)
        requested.check_resource(form)
        return self.current_account(grant.user_oid), requested, None

    def current_account(self, oid: str) -> EntraUser:
        """Roles and consented scopes are read at every issuance, so a test can change them between refreshes."""
        user = self.behaviour.account(oid)
        if user is None:  # the account was deleted
            raise revoked_grant()
        return user

    def token_response(self, user: EntraUser, requested: ScopeRequest, nonce: str | None, certificate: bool,
                       new_refresh_token: bool) -> dict:
        b, now = self.behaviour, int(time.time())
        granted = requested.granted(user)
        access = self.access_claims(user, requested, granted, "2" if certificate else "1", now)
        body = {"token_type": "Bearer", "scope": " ".join([f"{requested.identifier}/{n}" for n in granted] + requested.oidc),
                "expires_in": b.token_lifetime, "ext_expires_in": b.token_lifetime,
                "access_token": self.registry.issue(access, self.signing_key)}
        if new_refresh_token:
            body["refresh_token"] = b.sign_ins.new_refresh_token(RefreshGrant(
                client_id=b.client_id, user_oid=user.oid, scope=requested.text, issued=now, expires=now + b.refresh_token_lifetime))
        if "openid" in requested.oidc:
            body["id_token"] = self.id_token(user, requested, nonce, now)
        return body

    def common_claims(self, user: EntraUser, now: int) -> dict:
        return {"iat": now, "nbf": now, "exp": now + self.behaviour.token_lifetime, "name": user.name, "oid": user.oid,
                "tid": user.tid.lower(), "aio": b64url(secrets.token_bytes(30)), "rh": "1.A" + b64url(secrets.token_bytes(24)),
                "uti": b64url(secrets.token_bytes(16))}

    def access_claims(self, user: EntraUser, requested: ScopeRequest, granted: list[str], client_auth: str, now: int) -> dict:
        """Built as Entra builds them for the API's token version; `client_auth` is azpacr/appidacr
        (1: secret, 2: certificate)."""
        b, api, tid = self.behaviour, requested.api, user.tid.lower()
        claims = self.common_claims(user, now)
        if api is None:  # only OpenID scopes: Entra's access token is then for Microsoft Graph
            return {**claims, "aud": MICROSOFT_GRAPH_APP, "iss": f"https://sts.windows.net/{tid}/", "appid": b.client_id,
                    "scp": " ".join(s for s in requested.oidc if s != "offline_access"), "sub": pairwise(user.oid, MICROSOFT_GRAPH_APP),
                    "ver": "1.0"}
        claims["sub"] = pairwise(user.oid, api.client_id)
        if granted:
            claims["scp"] = " ".join(granted)
        if user.roles:
            claims["roles"] = list(user.roles)
        if api.token_version == 1:
            claims.update({"aud": requested.identifier, "iss": f"https://sts.windows.net/{tid}/", "appid": b.client_id,
                           "appidacr": client_auth, "upn": user.preferred_username, "unique_name": user.preferred_username, "ver": "1.0"})
        else:
            claims.update({"aud": api.client_id, "iss": f"{self.base_url}/{tid}/v2.0", "azp": b.client_id, "azpacr": client_auth,
                           "preferred_username": user.preferred_username, "ver": "2.0"})
        return claims

    def id_token(self, user: EntraUser, requested: ScopeRequest, nonce: str | None, now: int) -> str:
        b = self.behaviour
        claims = {**self.common_claims(user, now), "aud": b.client_id, "iss": f"{self.base_url}/{user.tid.lower()}/v2.0",
                  "preferred_username": user.preferred_username, "sub": pairwise(user.oid, b.client_id), "ver": "2.0"}
        if nonce is not None:
            claims["nonce"] = nonce
        if "email" in requested.oidc:
            claims["email"] = user.preferred_username
        token = self.signing_key.jwt(claims)
        with b.sign_ins.lock:
            b.sign_ins.id_tokens.append(token)
        return token


def described(code: int, text: str) -> dict[str, str]:
    """How Entra describes an error: the AADSTS code and text, then trace and correlation ids and the time."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return {"error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}",
            "timestamp": stamp, "trace_id": trace, "correlation_id": correlation, "error_uri": ERROR_LOOKUP + str(code)}


def pairwise(oid: str, client_id: str) -> str:
    """Entra's `sub`: the same user looks different to each application."""
    return b64url(hashlib.sha256(f"{oid}:{client_id}".encode()).digest())[:43]


def pkce_matches(verifier: str | None, challenge: str, method: str) -> bool:
    if not verifier:
        return False
    computed = b64url(hashlib.sha256(verifier.encode()).digest()) if method == "S256" else verifier
    return secrets.compare_digest(computed.encode(), challenge.encode())


def start_entra(behaviour: EntraBehaviour, registry: TokenRegistry, port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), EntraHandler)
    server.daemon_threads = True
    server.behaviour = behaviour  # type: ignore[attr-defined]
    server.registry = registry  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    server.signing_key = RSAKey()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="fake-entra", daemon=True).start()
    return server
