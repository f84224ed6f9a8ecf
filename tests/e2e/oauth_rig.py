"""What the OAuth front's end-to-end tests share: the fake Entra set up for the front, the
stack's config (three instances: the front for test rigs, a strict front, and a plain
resource server), a local TLS server with a throwaway CA for Client ID Metadata Documents, a
scripted "browser" that walks the consent page and the redirects with httpx, and restarts.

The browser keeps the consent cookie itself: it is `Secure`, and the rig talks plain http to
127.0.0.1, where a cookie jar would hold it back."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2

from conftest import Stack, e2e_config, private_file, stack_cmd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from fake_entra import EntraAPI, EntraBehaviour, EntraUser, TokenRegistry, start_entra  # noqa: E402

GATEWAY_APP = "9a9a9a9a-0000-4000-8000-0000000000c1"
SECRET = "oauth-e2e-Secret~value.that-must-never-be-logged"
API_APP = "a9a9a9a9-0000-4000-8000-0000000000c2"
API_URI = "api://mcp-fcgi-e2e"
SCOPE = f"{API_URI}/mcp.tools"
# Every instance is its own API app at Entra (a token for one is refused by the others).
INSTANCE_APIS = {"": (API_APP, API_URI), "/strict": ("a9a9a9a9-0000-4000-8000-0000000000c3", "api://mcp-fcgi-e2e-strict"),
                 "/plain": ("a9a9a9a9-0000-4000-8000-0000000000c4", "api://mcp-fcgi-e2e-plain")}
TENANT_A = "aaaaaaaa-0000-4000-8000-0000000000c0"
TENANT_X = "eeeeeeee-0000-4000-8000-0000000000c0"  # not allowed on the instances
ALICE = EntraUser(oid="a11ce000-0000-4000-8000-0000000000c1", tid=TENANT_A, preferred_username="alice@a.example",
                  name="Alice", roles=["MCP.User"])
MALLORY = EntraUser(oid="3a110000-0000-4000-8000-0000000000c9", tid=TENANT_X, preferred_username="mallory@x.example",
                    name="Mallory", roles=["MCP.User"])
# Instances of the stack: the front with the test-rig flags, a strict front, and no front at all.
STRICT, PLAIN = "/strict", "/plain"
REFRESH_GRACE_SECONDS = 2
STRICT_REGISTRATIONS_PER_HOUR = 3
DOCUMENT_MAX_BYTES = 2048


def new_fake_entra(ports: list[int]) -> tuple[EntraBehaviour, object]:
    callbacks = [f"http://127.0.0.1:{p}{base}/oauth/callback" for p in ports for base in ("", STRICT)]
    behaviour = EntraBehaviour(client_id=GATEWAY_APP, client_secret=SECRET, resource="https://analysis.windows.net/powerbi/api",
                               gateway_audiences=[app for app, _ in INSTANCE_APIS.values()], redirect_uris=callbacks,
                               apis=[EntraAPI(client_id=app, identifier_uris=[uri], scopes=["mcp.tools"])
                                     for app, uri in INSTANCE_APIS.values()],
                               users=[ALICE, MALLORY], signed_in_user=ALICE.oid)
    return behaviour, start_entra(behaviour, TokenRegistry())


def oauth_config(port: int, entra_port: int, ca_bundle: str) -> dict:
    base = e2e_config(port)
    base.pop("auth")
    authority = f"http://127.0.0.1:{entra_port}"
    # A file, not the environment: mod_fcgid starts the responder with an environment of its own.
    secret_file = private_file(Path(f"/tmp/mcp-fcgi-e2e-oauth-{port}-secrets"), "client-secret", SECRET)
    base["credential"] = {"client_id": GATEWAY_APP, "client_secret_file": secret_file, "authority": authority,
                          "allow_insecure_http_for_testing": True}

    def instance(path: str, oauth: dict | None) -> dict:
        url = f"http://127.0.0.1:{port}{path}/mcp"
        app, uri = INSTANCE_APIS[path]
        inst = {"server": {"mcp_path": f"{path}/mcp", "public_url": url},
                "auth": {"mode": "entra", "tenant_id": TENANT_A, "client_id": app, "authority": authority,
                         "allow_insecure_http_for_testing": True, "scopes_supported": [f"{uri}/mcp.tools"]}}
        if oauth is not None:
            inst["oauth"] = {"enabled": True, **oauth}
        return inst

    base["instances"] = {
        # Users of any organisation sign in; the tenant allow-list decides (MALLORY's is not on it).
        "front": instance("", {"entra_tenant": "organizations", "allow_private_metadata_hosts_for_testing": True,
                               "ca_bundle": ca_bundle, "refresh_grace_seconds": REFRESH_GRACE_SECONDS,
                               "registrations_per_hour": 1000, "metadata_document_max_bytes": DOCUMENT_MAX_BYTES}),
        "strict": instance(STRICT, {"ca_bundle": ca_bundle, "registrations_per_hour": STRICT_REGISTRATIONS_PER_HOUR}),
        "plain": instance(PLAIN, None),
    }
    return base




def restart(stack: Stack, binary: Path, config_path: Path) -> None:
    """`scripts/stack up` again on the same run dir: the responder (or Apache and its fcgid
    processes) restarts with the state dir as it was."""
    proc = stack_cmd("up", "--server", stack.server, "--port", str(stack.port), "--run-dir", str(stack.run_dir),
                     "--binary", str(binary), "--config", str(config_path))
    assert proc.returncode == 0, f"restart failed:\n{proc.stdout}\n{proc.stderr}"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, keep_blank_values=True))


# ---------------------------------------------------------------- Client ID Metadata Documents over TLS


class DocumentServer:
    """An https server on 127.0.0.1 with a certificate from a throwaway CA (made with openssl),
    serving JSON documents a test puts at paths."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)  # the responder runs as www-data and reads the CA bundle
        self.ca = directory / "ca.pem"
        key, cert, ca_key = directory / "server.key", directory / "server.pem", directory / "ca.key"
        ext = directory / "san.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=serverAuth\n")
        run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)  # noqa: E731
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mcp-fcgi e2e throwaway CA",
            "-keyout", str(ca_key), "-out", str(self.ca), "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(directory / "server.csr"))
        run("x509", "-req", "-in", str(directory / "server.csr"), "-CA", str(self.ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
        self.ca.chmod(0o644)
        self.documents: dict[str, tuple[bytes, str]] = {}
        self.fetches: list[str] = []
        rig = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rig.fetches.append(self.path)
                body, cache = rig.documents.get(self.path, (b'{"error":"not found"}', "no-store"))
                self.send_response(200 if self.path in rig.documents else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", cache)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, name="cimd-tls", daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def put(self, path: str, document: dict | bytes, cache: str = "max-age=3600") -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.documents[path] = (body, cache)
        return self.base_url + path

    def close(self) -> None:
        self.server.shutdown()


# ---------------------------------------------------------------- the scripted browser


@dataclass
class ConsentForm:
    status: int
    page: str
    fields: dict[str, str]
    client_name: str
    redirect_host: str
    headers: httpx2.Headers


@dataclass
class Browser:
    """A person's browser, scripted: follows redirects one by one (so each step can be
    checked), keeps the gateway's cookies, stops at the client's redirect URI."""
    gateway: str  # http://127.0.0.1:port
    cookies: dict[str, str] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)  # every URL visited (for the leak checks)

    def _send(self, method: str, url: str, data: dict | None = None) -> httpx2.Response:
        headers = {}
        if url.startswith(self.gateway) and self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.seen.append(url)
        with httpx2.Client(timeout=30, follow_redirects=False) as http:
            reply = http.request(method, url, data=data, headers=headers)
        if url.startswith(self.gateway):
            for value in reply.headers.get_list("set-cookie"):
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return reply

    def get(self, url: str) -> httpx2.Response:
        return self._send("GET", url)

    def post(self, url: str, data: dict) -> httpx2.Response:
        return self._send("POST", url, data)

    @staticmethod
    def consent_form(reply: httpx2.Response) -> ConsentForm | None:
        if reply.status_code != 200 or "text/html" not in reply.headers.get("content-type", ""):
            return None
        page = reply.text
        fields = {m.group(1): html.unescape(m.group(2))
                  for m in re.finditer(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}
        name = re.search(r'<span id="client-name">([^<]*)</span>', page)
        host = re.search(r'<p class="host" id="redirect-host">([^<]*)</p>', page)
        return ConsentForm(reply.status_code, page, fields, html.unescape(name.group(1)) if name else "",
                           html.unescape(host.group(1)) if host else "", reply.headers)

    def follow(self, reply: httpx2.Response, redirect_uri: str, hops: int = 8) -> str:
        """Follows Location headers until one points at the client's redirect URI; returns it."""
        for _ in range(hops):
            assert reply.status_code in (302, 303), f"expected a redirect, got {reply.status_code}: {reply.text[:500]}"
            location = reply.headers["location"]
            if location.split("?", 1)[0] == redirect_uri.split("?", 1)[0]:
                self.seen.append(location)
                return location
            reply = self.get(urllib.parse.urljoin(str(reply.request.url), location))
        raise AssertionError("too many redirects")

    def authorize(self, authorization_url: str, redirect_uri: str, decision: str = "allow",
                  consent: list[ConsentForm] | None = None) -> dict[str, str]:
        """The whole sign-in from the authorization URL: the consent page (when shown) answered
        with `decision`, Entra, our callback. Returns the query the client's redirect URI got."""
        reply = self.get(authorization_url)
        form = self.consent_form(reply)
        if form is not None:
            if consent is not None:
                consent.append(form)
            action = re.search(r'<form method="post" action="([^"]+)">', form.page)
            assert action, form.page
            reply = self.post(self.gateway + html.unescape(action.group(1)), {**form.fields, "decision": decision})
        return query_of(self.follow(reply, redirect_uri))


def auth_server_metadata(gateway: str, base: str = "") -> dict:
    with httpx2.Client(timeout=10) as http:
        reply = http.get(f"{gateway}/.well-known/oauth-authorization-server{base}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def register(gateway: str, base: str = "", **metadata) -> httpx2.Response:
    body = {"client_name": "E2E raw client", "redirect_uris": ["http://127.0.0.1:9/callback"],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"]}
    body.update(metadata)
    with httpx2.Client(timeout=10) as http:
        return http.post(f"{gateway}{base}/oauth/register", json=body)


def token_request(gateway: str, form: dict, base: str = "", auth: tuple[str, str] | None = None) -> httpx2.Response:
    with httpx2.Client(timeout=30) as http:
        return http.post(f"{gateway}{base}/oauth/token", data=form, auth=auth)


def audit_export(stack: Stack) -> str:
    out = []
    for instance in ("front", "strict", "plain"):
        done = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), "audit", "export", "--since", "1d", "--config",
                               str(stack.run_dir / "config.json"), "--instance", instance],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        out.append(done.stdout)
    return "\n".join(out)


def responder_logs(stack: Stack) -> str:
    """What mcp-fcgi wrote (its own log, or Apache's error log, where mod_fcgid puts its stderr).
    Access logs are the web server's: they hold request URLs, Entra's callback query included."""
    return "".join(p.read_text(errors="replace") for p in sorted((stack.run_dir / "logs").glob("*.log"))
                   if "access" not in p.name)


