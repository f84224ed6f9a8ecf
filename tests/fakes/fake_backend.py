"""A fake session-based web backend in the shape of SimpleChat (seed 001), behind Entra ID.

Routes (JSON everywhere):
  POST /api/login                 Authorization: Bearer <token the fake Entra issued for this backend's
                                  resource>; sets a `session` cookie (HttpOnly, Secure, Max-Age)
  GET  /api/user_info             the session's user, or 401
  GET  /api/conversations[?limit] the session user's own conversations, or 401
  GET  /api/conversations/{id}    one conversation, 404 unless it is the user's own
  POST /api/logout                ends the session
  GET  /api/slow                  answers after `slow_seconds` (timeouts)
  GET  /api/v1/profile            token route: Authorization: Bearer <token for this backend>
  GET  /api/service/status        api-key route: X-API-Key

Sessions live in server memory with their own expiry; `forget(user)` drops a user's
sessions as a restarted or expired backend would, so the next use answers 401.
"""
from __future__ import annotations

import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fake_entra import TokenRegistry


@dataclass
class Session:
    user: str
    tenant: str
    expires: float


@dataclass
class BackendModel:
    registry: TokenRegistry
    resource: str                     # tokens must carry this audience, e.g. "api://fake-chat"
    api_key: str = ""
    session_max_age: int = 3600
    slow_seconds: float = 0
    conversations: dict[str, list[dict]] = field(default_factory=dict)   # user oid -> conversations
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[str, Session] = field(default_factory=dict)
    issued_cookies: list[str] = field(default_factory=list)
    logins: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # 401s by path
    requests: list[tuple[str, str]] = field(default_factory=list)

    def forget(self, user: str) -> None:
        with self.lock:
            for sid in [s for s, v in self.sessions.items() if v.user == user]:
                del self.sessions[sid]

    def live_sessions(self, user: str) -> int:
        now = time.time()
        with self.lock:
            return sum(1 for v in self.sessions.values() if v.user == user and v.expires > now)

    def token_user(self, header: str | None) -> dict | None:
        if not header or not header.startswith("Bearer "):
            return None
        claims = self.registry.lookup(header[7:])
        return claims if claims and claims.get("aud") == self.resource else None


class BackendHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSimpleChat/1"
    # Headers and body go out in two writes; without this, Nagle and delayed ACKs add 40 ms per answer.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    @property
    def model(self) -> BackendModel:
        return self.server.model  # type: ignore[attr-defined]

    def reply(self, status: int, body, cookies: list[str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for c in cookies or []:
            self.send_header("Set-Cookie", c)
        self.end_headers()
        self.wfile.write(data)

    def session(self) -> tuple[str, Session] | None:
        cookie = self.headers.get("Cookie", "")
        for part in cookie.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "session":
                with self.model.lock:
                    s = self.model.sessions.get(value)
                if s and s.expires > time.time():
                    return value, s
        return None

    def unauthorized(self, path: str) -> None:
        with self.model.lock:
            self.model.rejected[path] = self.model.rejected.get(path, 0) + 1
        self.reply(401, {"error": "not_authenticated", "message": "Please sign in"})

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method: str) -> None:
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            self.rfile.read(length)
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        m = self.model
        with m.lock:
            m.requests.append((method, self.path))
        if (method, path) == ("POST", "/api/login"):
            claims = m.token_user(self.headers.get("Authorization"))
            if claims is None:
                return self.reply(401, {"error": "invalid_token", "message": "A token for this backend is required"})
            sid = secrets.token_urlsafe(32)
            with m.lock:
                m.sessions[sid] = Session(claims["oid"], claims["tid"], time.time() + m.session_max_age)
                m.issued_cookies.append(sid)
                m.logins[claims["oid"]] = m.logins.get(claims["oid"], 0) + 1
            cookie = f"session={sid}; Max-Age={m.session_max_age}; Path=/; HttpOnly; Secure; SameSite=Lax"
            return self.reply(200, {"message": "signed in", "user_id": claims["oid"]}, [cookie])
        if (method, path) == ("GET", "/api/v1/profile"):
            claims = m.token_user(self.headers.get("Authorization"))
            if claims is None:
                return self.unauthorized(path)
            return self.reply(200, {"user_id": claims["oid"], "tenant_id": claims["tid"], "via": "token"})
        if (method, path) == ("GET", "/api/service/status"):
            if not m.api_key or not secrets.compare_digest(self.headers.get("X-API-Key", ""), m.api_key):
                return self.reply(401, {"error": "invalid_api_key"})
            return self.reply(200, {"status": "ok", "via": "api-key"})
        if (method, path) == ("GET", "/api/slow"):
            time.sleep(m.slow_seconds)
            return self.reply(200, {"slow": True})
        found = self.session()
        if found is None:
            return self.unauthorized(path)
        sid, s = found
        if (method, path) == ("GET", "/api/user_info"):
            return self.reply(200, {"user_id": s.user, "tenant_id": s.tenant, "email": f"{s.user[:8]}@example.test"})
        if (method, path) == ("POST", "/api/logout"):
            with m.lock:
                m.sessions.pop(sid, None)
            return self.reply(200, {"message": "signed out"}, ["session=; Max-Age=0; Path=/"])
        if (method, path) == ("GET", "/api/conversations"):
            items = m.conversations.get(s.user, [])
            limit = int(query.get("limit", ["100"])[0])
            return self.reply(200, {"user_id": s.user, "conversations": items[:limit]})
        one = re.fullmatch(r"/api/conversations/([^/]+)", path)
        if method == "GET" and one:
            wanted = urllib.parse.unquote(one.group(1))
            for c in m.conversations.get(s.user, []):
                if c["id"] == wanted:
                    return self.reply(200, c)
            return self.reply(404, {"error": "not_found", "message": f"No conversation {wanted}"})
        return self.reply(404, {"error": "not_found", "message": f"No route {method} {path}"})


class BackendServer(ThreadingHTTPServer):
    """Handshakes on each connection's own thread, so a client that refuses the certificate
    (the point of one test) neither blocks other connections nor prints a traceback."""
    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address):
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


def start_backend(model: BackendModel, port: int = 0, tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    """Serves `model` on loopback; with `tls`, over HTTPS (an internal CA's certificate in the tests)."""
    server = BackendServer(("127.0.0.1", port), BackendHandler)
    server.tls = tls
    server.daemon_threads = True
    server.model = model  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="fake-backend", daemon=True).start()
    return server
