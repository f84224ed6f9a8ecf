"""A fake Entra ID v2 token endpoint: POST /{tenant}/oauth2/v2.0/token.

It follows the documented request and error shapes (v2-oauth2-on-behalf-of-flow,
v2-oauth2-client-creds-grant-flow): On-Behalf-Of (grant_type jwt-bearer with
requested_token_use=on_behalf_of) and client credentials, authenticated by a client
secret or by a certificate client assertion (PS256/RS256, checked with the certificate's
public key when one is configured). The user assertion must be a token for the gateway's
audience in the same tenant. Errors come back as Entra writes them: `error`,
`error_description` starting with the AADSTS code, `error_codes`, `suberror`, `claims`.

Issued tokens are JWT-shaped and name their tenant and user; the fake Power BI API
(fake_powerbi.py) accepts only tokens recorded in the shared `TokenRegistry`.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


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


@dataclass
class TokenRegistry:
    """Tokens the fake Entra issued, shared with the fake Power BI API."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: dict[str, dict] = field(default_factory=dict)

    def issue(self, claims: dict) -> str:
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
    counts: dict[str, int] = field(default_factory=lambda: {"obo": 0, "client_credentials": 0, "errors": 0})


CLAIMS_CHALLENGE = json.dumps({"access_token": {"capolids": {"essential": True, "values": ["c0ffee00-0000-4000-8000-000000000001"]}}})


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

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def error(self, status: int, error: str, code: int, text: str, **extra) -> None:
        with self.server.lock:  # type: ignore[attr-defined]
            self.behaviour.counts["errors"] += 1
        body = {"error": error, "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {secrets.token_hex(8)}\r\n"
                f"Correlation ID: {secrets.token_hex(8)}\r\nTimestamp: 2026-11-23 00:00:00Z",
                "error_codes": [code], "timestamp": "2026-11-23 00:00:00Z",
                "trace_id": secrets.token_hex(8), "correlation_id": secrets.token_hex(8)}
        body.update(extra)
        self.reply(status, body)

    def do_GET(self):
        self.reply(405, {"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST requests."})

    def do_POST(self):
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", self.path)
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode()
        if not m:
            return self.reply(404, {"error": "not_found"})
        tenant = m.group(1).lower()
        if not GUID.match(tenant):
            return self.error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if not self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self.error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
        b = self.behaviour
        if form.get("client_id") != b.client_id:
            return self.error(400, "unauthorized_client", 700016, f"Application with identifier '{form.get('client_id')}' was not found in the directory.")
        if not self.client_authenticated(form, tenant):
            return self.error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.")
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
        with self.server.lock:  # type: ignore[attr-defined]
            b.counts[kind] += 1
        token = self.registry.issue(claims)
        self.reply(200, {"token_type": "Bearer", "scope": f"{b.resource}/.default", "expires_in": b.token_lifetime,
                         "ext_expires_in": b.token_lifetime, "access_token": token})

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


def start_entra(behaviour: EntraBehaviour, registry: TokenRegistry, port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), EntraHandler)
    server.daemon_threads = True
    server.behaviour = behaviour  # type: ignore[attr-defined]
    server.registry = registry  # type: ignore[attr-defined]
    server.lock = threading.Lock()  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="fake-entra", daemon=True).start()
    return server
