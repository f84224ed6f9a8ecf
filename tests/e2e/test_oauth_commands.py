"""The OAuth front's operator commands and setup help, run as an operator would: a client
registered through the front (the binary answering one CGI request) is listed by
`mcp-fcgi oauth clients`, removed by `oauth remove-client`; `oauth grants` and `oauth revoke`
answer; `mcp-fcgi entra app-manifest` prints the gateway's redirect URI and the az commands."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
API = "6f1c0c55-7a1d-4d0e-9b55-5f0e2d6e1a01"
GATEWAY = "0d3c1a55-1111-4e22-8a33-9b44c55d6e01"


def config(tmp_path: Path) -> Path:
    secret = tmp_path / "client-secret"
    secret.write_text("gateway-secret-for-tests\n")
    secret.chmod(0o600)
    cfg = {
        "server": {"public_url": "https://mcp.contoso.test/mcp", "name": "Contoso tools"},
        "state_dir": str(tmp_path / "state"),
        "auth": {"tenant_id": TENANT, "client_id": API, "audiences": ["api://contoso-mcp"],
                 "scopes_supported": ["api://contoso-mcp/mcp.tools"],
                 "authority": "https://login.example.test"},
        "credential": {"client_id": GATEWAY, "client_secret_file": str(secret)},
        "oauth": {"enabled": True},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def run(binary: Path, *args: str, env: dict | None = None, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], input=stdin, capture_output=True, timeout=60,
                          env=env if env is not None else {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def register(binary: Path, cfg: Path) -> dict:
    body = json.dumps({"redirect_uris": ["http://127.0.0.1:5123/callback"], "client_name": "Operator test client",
                       "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
                       "response_types": ["code"]}).encode()
    env = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/oauth/register", "CONTENT_TYPE": "application/json",
           "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1", "MCP_FCGI_CONFIG": str(cfg),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    out = run(binary, env=env, stdin=body)
    assert out.returncode == 0, out.stderr.decode()
    head, _, payload = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 201"), out.stdout
    return json.loads(payload)


def test_clients_are_listed_and_removed(binary, tmp_path):
    cfg = config(tmp_path)
    assert run(binary, "check-config", "--config", str(cfg)).returncode == 0
    client = register(binary, cfg)
    assert client["client_id"].startswith("mcpc_")
    listed = run(binary, "oauth", "clients", "--config", str(cfg))
    assert listed.returncode == 0, listed.stderr.decode()
    line = next(l for l in listed.stdout.decode().splitlines() if l.startswith(client["client_id"]))
    assert "\tregistered\tOperator test client\thttp://127.0.0.1:5123/callback\t" in line
    grants = run(binary, "oauth", "grants", "--config", str(cfg))
    assert grants.returncode == 0 and grants.stdout == b"", grants
    revoked = run(binary, "oauth", "revoke", "--config", str(cfg), "--user", "11111111-1111-4111-8111-111111111111",
                  "--tenant", TENANT)
    assert revoked.returncode == 0 and b"revoked 0 grant(s)" in revoked.stdout, revoked
    assert run(binary, "oauth", "revoke", "--config", str(cfg), "--grant", "nope").returncode == 1
    removed = run(binary, "oauth", "remove-client", client["client_id"], "--config", str(cfg))
    assert removed.returncode == 0 and b"its grants are revoked" in removed.stdout, removed
    assert client["client_id"] not in run(binary, "oauth", "clients", "--config", str(cfg)).stdout.decode()
    assert run(binary, "oauth", "remove-client", client["client_id"], "--config", str(cfg)).returncode == 1


def test_app_manifest_names_what_to_register(binary, tmp_path):
    out = run(binary, "entra", "app-manifest", "--config", str(config(tmp_path)))
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    assert "Redirect URI (platform Web): https://mcp.contoso.test/oauth/callback" in text
    assert f"az ad app update --id {GATEWAY} --web-redirect-uris https://mcp.contoso.test/oauth/callback" in text
    assert "Application ID URI: api://contoso-mcp" in text
    assert f"--api {API} --api-permissions " in text
    assert "\"value\":\"mcp.tools\"" in text


def test_oauth_off_leaves_the_resource_server_as_it_was(binary, tmp_path):
    cfg = json.loads(config(tmp_path).read_text())
    del cfg["oauth"]
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(cfg))
    env = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/.well-known/oauth-protected-resource/mcp", "MCP_FCGI_CONFIG": str(path),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    out = run(binary, env=env)
    head, _, payload = out.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 200"), out.stdout
    assert json.loads(payload)["authorization_servers"] == [f"https://login.example.test/{TENANT}/v2.0"]
    env["REQUEST_URI"] = "/oauth/authorize"
    assert run(binary, env=env).stdout.startswith(b"Status: 404")
