"""Authentication through each web server. The point here is the web server: Apache
withholds Authorization unless configured (CGIPassAuth, FcgidPassHeader), so a token
must demonstrably reach mcp-fcgi, and its 401 challenge must come back intact."""
from __future__ import annotations

import json

import pytest

from conftest import DEV_TENANT, mint_token
from mcp_http import Endpoint

E2E_OID = "22222222-2222-4222-8222-222222222222"
WHOAMI = {"name": "whoami", "arguments": {}}


def metadata_url(ep: Endpoint) -> str:
    return f"{ep.base_url}/.well-known/oauth-protected-resource/mcp"


def test_health_reports_development_mode(endpoint: Endpoint):
    doc = endpoint.request("GET", "/health", headers={"Authorization": None}).json
    assert doc["development_mode"] is True, doc


@pytest.mark.parametrize("era", ["modern", "legacy"])
def test_missing_token_is_401_with_challenge(endpoint: Endpoint, era: str):
    headers = {"Authorization": None}
    reply = (endpoint.modern("tools/list", headers=headers) if era == "modern"
             else endpoint.legacy("tools/list", {}, headers=headers))
    assert reply.status == 401, reply
    challenge = reply.headers.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), challenge
    assert f'resource_metadata="{metadata_url(endpoint)}"' in challenge, challenge
    assert "invalid_token" not in challenge, "no token is not an invalid token"


@pytest.mark.parametrize("token", ["not-a-jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_garbage_token_is_401_invalid_token(endpoint: Endpoint, token: str):
    reply = endpoint.legacy("tools/call", WHOAMI, headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in reply.headers.get("www-authenticate", ""), reply.headers


def test_token_for_another_audience_is_401(endpoint: Endpoint):
    token = mint_token(endpoint.stack, "--audience", "api://some-other-api")
    reply = endpoint.legacy("tools/call", WHOAMI, headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 401, reply
    assert 'error="invalid_token"' in reply.headers.get("www-authenticate", ""), reply.headers


def test_token_reaches_the_app(endpoint: Endpoint):
    """whoami shows the oid of the token we sent: Authorization crossed the web server."""
    token = mint_token(endpoint.stack, "--oid", E2E_OID, "--name", "E2E Tester")
    for reply in (endpoint.legacy("tools/call", WHOAMI, headers={"Authorization": f"Bearer {token}"}),
                  endpoint.modern("tools/call", WHOAMI, headers={"Authorization": f"Bearer {token}"})):
        assert reply.status == 200, reply
        who = reply.result["structuredContent"]
        assert who["authenticated"] is True, who
        dumped = json.dumps(who)
        assert E2E_OID in dumped and DEV_TENANT in dumped, who


def test_me(endpoint: Endpoint):
    reply = endpoint.request("GET", "/me")
    assert reply.status == 200, reply
    assert reply.json["authenticated"] is True
    assert endpoint.request("GET", "/me", headers={"Authorization": None}).status == 401


@pytest.mark.parametrize("suffix", ["", "/mcp"])
def test_protected_resource_metadata(endpoint: Endpoint, suffix: str):
    reply = endpoint.request("GET", "/.well-known/oauth-protected-resource" + suffix,
                             headers={"Authorization": None})
    assert reply.status == 200, reply
    doc = reply.json
    assert doc["resource"] == endpoint.url, doc
    assert doc["authorization_servers"], doc
    assert reply.headers.get("access-control-allow-origin") == "*", reply.headers
