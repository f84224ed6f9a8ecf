"""Fake identity providers other than Entra, each under its own path of one local server, in the
shapes their documentation gives (errors included):

- Google (`/google`): OpenID discovery whose `issuer` is `<base>/google` (no trailing slash, as
  Google's `https://accounts.google.com`), the JWKS at `jwks_uri`, RS256 ID tokens (`aud` and
  `azp` the OAuth client, `email`, `email_verified`), and `POST /google/tokeninfo` with the access
  token as a Bearer credential (google-auth-library's call): the documented fields, numbers and
  booleans written as strings (`expires_in: "3599"`, `email_verified: "true"`); an unknown or
  expired token is `400 {"error": "invalid_token", "error_description": "Invalid Value"}`.
- An Auth0-style tenant (`/auth0/`): the issuer ends with "/" (Auth0 writes
  `https://{domain}/`), JWKS at `/.well-known/jwks.json`, access tokens with an `aud` array and
  the RBAC `permissions` claim.
- GitHub's REST API (`/github`): `GET /user` (`login`, `id`, `name`; `X-OAuth-Scopes`),
  `GET /user/orgs` (a list of `{login, id}`; 403 when the token lacks `read:org`); a bad token is
  `401 {"message": "Bad credentials", "documentation_url": …}`.

Tests steer it through `IdentityBehaviour` (the fake runs in the test's process) and read back how
often each endpoint was asked (`counts`). `down = True` answers every request 503.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fake_entra import RSAKey, b64url_decode  # noqa: F401  (b64url_decode for tests reading tokens)


@dataclass
class GitHubUser:
    login: str
    id: int
    name: str | None = None
    orgs: list[str] | None = field(default_factory=list)  # None: the token lacks read:org


@dataclass
class IdentityBehaviour:
    google_client: str
    google_access_tokens: dict[str, dict] = field(default_factory=dict)
    github_tokens: dict[str, GitHubUser] = field(default_factory=dict)
    down: bool = False
    counts: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def google_access_token(self, token: str, sub: str, email: str, verified: bool = True,
                            aud: str | None = None, expires_in: int = 3599) -> str:
        aud = aud or self.google_client
        with self.lock:
            self.google_access_tokens[token] = {
                "azp": aud, "aud": aud, "sub": sub, "scope": "openid https://www.googleapis.com/auth/userinfo.email",
                "exp": str(int(time.time()) + expires_in), "expires_in": str(expires_in),
                "email": email, "email_verified": "true" if verified else "false", "access_type": "online"}
        return token


class IdentityHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: pytest shows failures, not traffic
        pass

    @property
    def behaviour(self) -> IdentityBehaviour:
        return self.server.behaviour  # type: ignore[attr-defined]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, status: int, body, headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def bearer(self) -> str | None:
        h = self.headers.get("Authorization", "")
        return h[7:] if h.startswith("Bearer ") else None

    def answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        b = self.behaviour
        with b.lock:
            b.counts[self.path] += 1
            down = b.down
        if down:
            return self.reply(503, {"message": "Service Unavailable"})
        keys = self.server.keys  # type: ignore[attr-defined]
        if method == "GET" and self.path == "/google/.well-known/openid-configuration":
            return self.reply(200, {"issuer": self.base + "/google", "jwks_uri": self.base + "/google/certs",
                                    "id_token_signing_alg_values_supported": ["RS256"],
                                    "subject_types_supported": ["public"], "response_types_supported": ["code", "id_token"]})
        if method == "GET" and self.path == "/google/certs":
            return self.reply(200, {"keys": [self.jwk(keys["google"])]})
        if method == "POST" and self.path == "/google/tokeninfo":
            with b.lock:
                info = b.google_access_tokens.get(self.bearer() or "")
            if info is None or int(info["exp"]) <= time.time():
                return self.reply(400, {"error": "invalid_token", "error_description": "Invalid Value"})
            return self.reply(200, info)
        if method == "GET" and self.path == "/auth0/.well-known/openid-configuration":
            return self.reply(200, {"issuer": self.base + "/auth0/", "jwks_uri": self.base + "/auth0/.well-known/jwks.json"})
        if method == "GET" and self.path == "/auth0/.well-known/jwks.json":
            return self.reply(200, {"keys": [self.jwk(keys["auth0"])]})
        if method == "GET" and self.path.startswith("/github/user"):
            return self.github()
        return self.reply(404, {"message": "Not Found"})

    @staticmethod
    def jwk(key: RSAKey) -> dict:
        jwk = key.jwk("")
        jwk.pop("issuer")
        jwk["alg"] = "RS256"
        return jwk

    def github(self) -> None:
        with self.behaviour.lock:
            user = self.behaviour.github_tokens.get(self.bearer() or "")
        if user is None:
            return self.reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
        if self.headers.get("Accept") != "application/vnd.github+json":
            return self.reply(415, {"message": "Unsupported 'Accept' header"})
        scopes = "read:user" + (", read:org" if user.orgs is not None else "")
        if self.path == "/github/user":
            return self.reply(200, {"login": user.login, "id": user.id, "name": user.name, "type": "User"},
                              headers=(("X-OAuth-Scopes", scopes),))
        if self.path == "/github/user/orgs?per_page=100":
            if user.orgs is None:
                return self.reply(403, {"message": "Resource not accessible by personal access token",
                                        "documentation_url": "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user",
                                        "status": "403"})
            return self.reply(200, [{"login": o, "id": 1000 + i} for i, o in enumerate(user.orgs)])
        return self.reply(404, {"message": "Not Found"})

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")


class IdentityProviders:
    def __init__(self, behaviour: IdentityBehaviour):
        self.behaviour = behaviour
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), IdentityHandler)
        self.server.daemon_threads = True
        self.server.behaviour = behaviour  # type: ignore[attr-defined]
        self.keys = {"google": RSAKey(), "auth0": RSAKey()}
        self.server.keys = self.keys  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, name="fake-identity-providers", daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def google_issuer(self) -> str:
        return self.base + "/google"

    @property
    def auth0_issuer(self) -> str:
        return self.base + "/auth0/"

    def google_id_token(self, sub: str, email: str, verified: bool = True, aud: str | None = None) -> str:
        now = int(time.time())
        aud = aud or self.behaviour.google_client
        return self.keys["google"].jwt({"iss": self.google_issuer, "aud": aud, "azp": aud, "sub": sub, "email": email,
                                        "email_verified": verified, "name": "Ada Lovelace", "iat": now, "exp": now + 3600})

    def auth0_token(self, sub: str, audience: str, permissions: list[str], iss: str | None = None,
                    key: str = "auth0") -> str:
        now = int(time.time())
        return self.keys[key].jwt({"iss": iss or self.auth0_issuer, "sub": sub, "aud": [audience, self.auth0_issuer + "userinfo"],
                                   "azp": "auth0-client", "scope": "openid profile", "permissions": permissions,
                                   "iat": now, "exp": now + 3600})

    def shutdown(self) -> None:
        self.server.shutdown()
