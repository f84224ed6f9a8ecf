"""Raw HTTP checks of every status rule of the mcp-fcgi contract, through each web server.

The point of running these through nginx, mod_proxy_fcgi and mod_fcgid (not just against
the binary) is that a web server can eat a header (Authorization, Allow, Mcp-*), replace
an error body with its own page, or refuse a body before the app sees it."""
from __future__ import annotations

import json
import socket
import urllib.parse

import pytest

from conftest import MAX_BODY_BYTES, MAX_JSON_DEPTH, _endpoint, selected
from mcp_http import MODERN_VERSION, Endpoint, b64_header

SUPPORTED = [MODERN_VERSION, "2025-11-25", "2025-06-18", "2025-03-26"]


def assert_rpc_error(reply, status: int, code: int, *, has_id=None):
    assert reply.status == status, f"expected HTTP {status}, got {reply}"
    assert reply.headers.get("content-type", "").startswith("application/json"), reply.headers
    doc = reply.json
    assert doc.get("jsonrpc") == "2.0", doc
    assert doc["error"]["code"] == code, doc
    assert isinstance(doc["error"].get("message"), str), doc
    if has_id is not None:
        assert doc.get("id") == has_id, doc
    return doc["error"]


def assert_no_id(reply):
    doc = reply.json
    assert doc.get("id") is None, f"error answered before the message was read must carry no id: {doc}"


# ------------------------------------------------------------------ plain HTTP surface

def test_health(endpoint: Endpoint):
    reply = endpoint.request("GET", "/health")
    assert reply.status == 200, reply
    assert reply.headers["content-type"].startswith("application/json")
    doc = reply.json
    assert doc["status"] == "ok"
    assert isinstance(doc["version"], str) and doc["version"]
    assert isinstance(doc["uptime_seconds"], (int, float)) and doc["uptime_seconds"] >= 0


@pytest.mark.parametrize("path", ["/", "/nope", "/mcp/extra", "/healthz",
                                  "/.well-known/oauth-protected-resource/not-the-mcp-path"])
def test_unknown_paths_are_404(endpoint: Endpoint, path: str):
    assert endpoint.request("GET", path).status == 404
    assert endpoint.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"}).status == 404


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_on_mcp_are_405(endpoint: Endpoint, method: str):
    reply = endpoint.request(method, "/mcp", headers={"Accept": "text/event-stream"})
    assert reply.status == 405, reply
    assert reply.headers.get("allow") == "POST", reply.headers


# ------------------------------------------------------------------ transport rules

PING = {"jsonrpc": "2.0", "id": 7, "method": "ping"}


def test_bad_origin_is_403(endpoint: Endpoint):
    reply = endpoint.post(PING, {"Origin": "http://evil.example"})
    assert reply.status == 403, reply
    assert "error" in reply.json
    assert_no_id(reply)


def test_allowed_origin_is_served(endpoint: Endpoint):
    port = endpoint.base_url.rsplit(":", 1)[1]
    reply = endpoint.post(PING, {"Origin": f"http://127.0.0.1:{port}"})
    assert reply.status == 200, reply
    assert reply.json == {"jsonrpc": "2.0", "id": 7, "result": {}}


@pytest.mark.parametrize("accept", ["text/html", "text/event-stream", "image/png, text/plain"])
def test_accept_without_json_is_406(endpoint: Endpoint, accept: str):
    assert endpoint.post(PING, {"Accept": accept}).status == 406


@pytest.mark.parametrize("accept", ["application/json", "application/*", "*/*",
                                    "text/event-stream, application/json;q=0.9", None])
def test_accept_allowing_json_is_served(endpoint: Endpoint, accept):
    reply = endpoint.post(PING, {"Accept": accept})
    assert reply.status == 200, reply
    assert reply.json["result"] == {}


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_415(endpoint: Endpoint, ctype):
    assert endpoint.post(PING, {"Content-Type": ctype}).status == 415


def test_json_content_type_with_charset_is_served(endpoint: Endpoint):
    assert endpoint.post(PING, {"Content-Type": "application/json; charset=utf-8"}).status == 200


def test_body_over_limit_is_413_from_the_app(endpoint: Endpoint):
    # Valid JSON, just too big. The web servers allow 2 MiB, so this is the app's 413.
    padding = "x" * (MAX_BODY_BYTES + 1000)
    reply = endpoint.post({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": padding}})
    assert reply.status == 413, reply
    assert "error" in reply.json, "the app answers 413 with a JSON-RPC error body"


def raw_exchange(endpoint: Endpoint, request_line: str, body: bytes = b"", *, content_length: int | None = None,
                 timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """One request written byte for byte on a fresh connection; (status, headers, body) of the answer."""
    url = urllib.parse.urlsplit(endpoint.base_url)
    head = (f"{request_line}\r\nHost: {url.netloc}\r\nAuthorization: Bearer {endpoint.token}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"Content-Length: {len(body) if content_length is None else content_length}\r\nConnection: close\r\n\r\n")
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(head.encode() + body)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # a server may reset after answering a request whose body it will not read
    head_bytes, _, rest = answer.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2:]
        rest = body
    elif "content-length" in headers:
        rest = rest[:int(headers["content-length"])]
    return int(lines[0].split()[1]), headers, rest


def test_body_over_limit_is_a_jsonrpc_error_with_null_id(endpoint: Endpoint):
    padding = "x" * (MAX_BODY_BYTES + 1000)
    reply = endpoint.post({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": padding}})
    assert_rpc_error(reply, 413, -32600)
    assert "id" in reply.json and reply.json["id"] is None, reply.json


@pytest.mark.parametrize("server", selected(["nginx"]))
def test_body_over_nginx_limit_is_a_jsonrpc_error(stacks, server):
    """nginx refuses bodies over client_max_body_size itself; the snippet's error_page makes that a JSON-RPC error."""
    endpoint = _endpoint(stacks, server)
    # Declared 3 MiB, over nginx's 2 MiB: nginx answers before reading the body.
    status, headers, body = raw_exchange(endpoint, f"POST {endpoint.mcp_path} HTTP/1.1", content_length=3 << 20)
    assert status == 413, (status, headers, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    doc = json.loads(body)
    assert doc["jsonrpc"] == "2.0" and doc["id"] is None and doc["error"]["code"] == -32600, doc
    assert endpoint.legacy("ping").status == 200, "the next request is served"


def test_absolute_form_request_line_is_routed_on_its_path(endpoint: Endpoint):
    # RFC 9112 3.2.2: servers must accept the absolute form. Apache hands it on as REQUEST_URI.
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "ping"}).encode()
    status, headers, answer = raw_exchange(endpoint, f"POST {endpoint.url} HTTP/1.1", body)
    assert status == 200, (status, headers, answer)
    assert json.loads(answer) == {"jsonrpc": "2.0", "id": 7, "result": {}}


@pytest.mark.parametrize("raw_id", ["123456789012345678901234567890", "1.5", "1e3"])
def test_ids_that_cannot_round_trip_are_refused(endpoint: Endpoint, raw_id: str):
    reply = endpoint.post(None, raw=f'{{"jsonrpc":"2.0","id":{raw_id},"method":"ping"}}'.encode())
    assert_rpc_error(reply, 400, -32600)
    assert_no_id(reply)


def test_big_integer_and_string_ids_round_trip_exactly(endpoint: Endpoint):
    for raw_id in ["9223372036854775807", '"123456789012345678901234567890"']:
        reply = endpoint.post(None, raw=f'{{"jsonrpc":"2.0","id":{raw_id},"method":"ping"}}'.encode())
        assert reply.status == 200, reply
        assert f'"id":{raw_id},'.encode() in reply.body, reply


def test_body_just_under_limit_is_served(endpoint: Endpoint):
    msg = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": ""}}
    msg["params"]["pad"] = "x" * (MAX_BODY_BYTES - len(json.dumps(msg)) - 10)
    assert endpoint.post(msg).status == 200


def test_unparseable_json_is_400_parse_error(endpoint: Endpoint):
    reply = endpoint.post(None, raw=b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert_rpc_error(reply, 400, -32700)
    assert_no_id(reply)


def test_batch_is_400_invalid_request(endpoint: Endpoint):
    reply = endpoint.post([PING, {**PING, "id": 8}])
    assert_rpc_error(reply, 400, -32600)


@pytest.mark.parametrize("message", [
    {"id": 1, "method": "ping"},                                  # no jsonrpc
    {"jsonrpc": "1.0", "id": 1, "method": "ping"},                # wrong jsonrpc
    {"jsonrpc": "2.0", "id": 1},                                  # no method
    {"jsonrpc": "2.0", "id": 1, "method": 42},                    # method not a string
    {"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"},         # id neither string nor number
    {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": 3},   # params not structured
    "ping",                                                       # not an object
    42,
], ids=["no-jsonrpc", "jsonrpc-1.0", "no-method", "method-number", "id-object", "params-number",
        "string", "number"])
def test_invalid_request_object_is_400(endpoint: Endpoint, message):
    assert_rpc_error(endpoint.post(message), 400, -32600)


def test_nesting_too_deep_is_400_parse_error(endpoint: Endpoint):
    deep = 0
    for _ in range(MAX_JSON_DEPTH * 3):
        deep = [deep]
    reply = endpoint.post({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"deep": deep}})
    err = assert_rpc_error(reply, 400, -32700)
    assert "deep" in err["message"].lower(), err


def test_moderate_nesting_is_fine(endpoint: Endpoint):
    nested = 0
    for _ in range(MAX_JSON_DEPTH // 2):
        nested = [nested]
    assert endpoint.post({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"n": nested}}).status == 200


# ------------------------------------------------------------------ modern era (2026-07-28)

def test_modern_discover(endpoint: Endpoint):
    reply = endpoint.modern("server/discover")
    assert reply.status == 200, reply
    result = reply.result
    assert result["resultType"] == "complete"
    assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0
    assert result["cacheScope"] in ("public", "private")


def test_modern_tools_list(endpoint: Endpoint):
    reply = endpoint.modern("tools/list")
    assert reply.status == 200, reply
    result = reply.result
    assert result["resultType"] == "complete"
    assert isinstance(result["ttlMs"], int) and result["ttlMs"] >= 0
    assert result["cacheScope"] == "private", "tools depend on the caller"
    assert result["tools"], result


@pytest.mark.parametrize("tool", ["whoami", "server_info"])
def test_modern_tools_call(endpoint: Endpoint, tool: str):
    reply = endpoint.modern("tools/call", {"name": tool, "arguments": {}}, id="call-1")
    assert reply.status == 200, reply
    doc = reply.json
    assert doc["id"] == "call-1"
    result = doc["result"]
    assert result["resultType"] == "complete"
    assert result.get("isError") in (None, False), result
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


HEADER_CASES = {
    # name: (method, params, header overrides)
    "protocol-version-missing": ("tools/list", None, {"MCP-Protocol-Version": None}),
    "protocol-version-mismatch": ("tools/list", None, {"MCP-Protocol-Version": "2025-11-25"}),
    "mcp-method-missing": ("tools/list", None, {"Mcp-Method": None}),
    "mcp-method-mismatch": ("tools/list", None, {"Mcp-Method": "tools/call"}),
    "mcp-name-missing": ("tools/call", {"name": "whoami", "arguments": {}}, {"Mcp-Name": None}),
    "mcp-name-mismatch": ("tools/call", {"name": "whoami", "arguments": {}}, {"Mcp-Name": "server_info"}),
    "mcp-name-base64-mismatch": ("tools/call", {"name": "whoami", "arguments": {}},
                                 {"Mcp-Name": b64_header("server_info")}),
}


@pytest.mark.parametrize("case", list(HEADER_CASES))
def test_modern_header_mismatch_is_400_32020(endpoint: Endpoint, case: str):
    method, params, headers = HEADER_CASES[case]
    assert_rpc_error(endpoint.modern(method, params, headers=headers), 400, -32020)


def test_modern_mcp_name_base64_match_is_served(endpoint: Endpoint):
    reply = endpoint.modern("tools/call", {"name": "whoami", "arguments": {}},
                            headers={"Mcp-Name": b64_header("whoami")})
    assert reply.status == 200, reply
    assert reply.result["resultType"] == "complete"


def test_modern_unsupported_version_is_400_32022(endpoint: Endpoint):
    err = assert_rpc_error(endpoint.modern("tools/list", version="2099-01-01"), 400, -32022)
    assert err["data"]["requested"] == "2099-01-01", err
    assert MODERN_VERSION in err["data"]["supported"], err
    assert set(err["data"]["supported"]) <= set(SUPPORTED), err


def test_modern_missing_client_capabilities_is_400_32602(endpoint: Endpoint):
    assert_rpc_error(endpoint.modern("tools/list", capabilities=False), 400, -32602)


@pytest.mark.parametrize("method", ["no/such/method", "initialize", "ping"])
def test_modern_unknown_method_is_404_32601(endpoint: Endpoint, method: str):
    params = {"protocolVersion": "2025-11-25", "capabilities": {},
              "clientInfo": {"name": "e2e", "version": "0"}} if method == "initialize" else None
    assert_rpc_error(endpoint.modern(method, params), 404, -32601, has_id=1)


def test_modern_unknown_tool_is_32602(endpoint: Endpoint):
    reply = endpoint.modern("tools/call", {"name": "no_such_tool", "arguments": {}})
    # The contract fixes the JSON-RPC code; -32602 maps to HTTP 400 in the modern era
    # (Python SDK mapping), some servers answer 200. Either is accepted here.
    assert reply.status in (200, 400), reply
    assert reply.error["code"] == -32602


def test_modern_bad_arguments_are_32602(endpoint: Endpoint):
    reply = endpoint.modern("tools/call", {"name": "whoami", "arguments": [1, 2]})
    assert reply.status in (200, 400), reply
    assert reply.error["code"] == -32602


# ------------------------------------------------------------------ legacy era

@pytest.mark.parametrize("requested,expected", [
    ("2025-03-26", "2025-03-26"), ("2025-06-18", "2025-06-18"), ("2025-11-25", "2025-11-25"),
    ("2099-01-01", "2025-11-25"), ("2024-11-05", "2025-11-25"),
])
def test_legacy_initialize_negotiates(endpoint: Endpoint, requested: str, expected: str):
    reply = endpoint.legacy("initialize", {"protocolVersion": requested, "capabilities": {},
                                           "clientInfo": {"name": "e2e", "version": "0"}}, version=None)
    assert reply.status == 200, reply
    result = reply.result
    assert result["protocolVersion"] == expected
    assert "tools" in result["capabilities"]
    assert result["serverInfo"]["name"], result


@pytest.mark.parametrize("version", [None, "2025-03-26", "2025-06-18", "2025-11-25"])
def test_legacy_ping(endpoint: Endpoint, version):
    reply = endpoint.legacy("ping", version=version, id=99)
    assert reply.status == 200, reply
    assert reply.json == {"jsonrpc": "2.0", "id": 99, "result": {}}


def test_legacy_unsupported_protocol_version_header_is_400(endpoint: Endpoint):
    reply = endpoint.legacy("ping", version="1999-01-01")
    assert reply.status == 400, reply


def test_legacy_unknown_method_is_200_32601(endpoint: Endpoint):
    assert_rpc_error(endpoint.legacy("no/such/method", {}), 200, -32601, has_id=1)


@pytest.mark.parametrize("version", [None, "2025-11-25"])
@pytest.mark.parametrize("method", ["notifications/initialized", "notifications/cancelled"])
def test_notifications_are_202_without_body(endpoint: Endpoint, method: str, version):
    params = {"requestId": 1} if method == "notifications/cancelled" else None
    reply = endpoint.legacy(method, params, id=None, version=version)
    assert reply.status == 202, reply
    assert reply.body == b"", reply


def test_legacy_tools_list_pages(endpoint: Endpoint):
    names, cursor, pages = [], None, 0
    while True:
        reply = endpoint.legacy("tools/list", {"cursor": cursor} if cursor else {})
        assert reply.status == 200, reply
        result = reply.result
        assert len(result["tools"]) <= 1, "tools_page_size is 1 in the test config"
        names += [t["name"] for t in result["tools"]]
        pages += 1
        cursor = result.get("nextCursor")
        if not cursor:
            break
        assert pages < 50
    assert {"whoami", "server_info"} <= set(names), names
    assert pages >= 2


def test_legacy_bad_cursor_is_32602(endpoint: Endpoint):
    reply = endpoint.legacy("tools/list", {"cursor": "definitely-not-a-cursor"})
    assert reply.error["code"] == -32602


@pytest.mark.parametrize("tool", ["whoami", "server_info"])
def test_legacy_tools_call(endpoint: Endpoint, tool: str):
    reply = endpoint.legacy("tools/call", {"name": tool, "arguments": {}})
    assert reply.status == 200, reply
    result = reply.result
    assert result.get("isError") in (None, False), result
    assert result["structuredContent"] is not None
    assert json.loads(result["content"][0]["text"]) == result["structuredContent"]


def test_legacy_unknown_tool_is_32602(endpoint: Endpoint):
    reply = endpoint.legacy("tools/call", {"name": "no_such_tool", "arguments": {}})
    assert reply.status in (200, 400), reply
    assert reply.error["code"] == -32602


@pytest.mark.parametrize("arguments", [[1, 2], "text"])
def test_legacy_bad_arguments_are_32602(endpoint: Endpoint, arguments):
    reply = endpoint.legacy("tools/call", {"name": "server_info", "arguments": arguments})
    assert reply.status in (200, 400), reply
    assert reply.error["code"] == -32602
