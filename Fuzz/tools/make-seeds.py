#!/usr/bin/env python3
"""Writes the seed corpus in Fuzz/corpus/ (run once; the files are committed). Real-shaped inputs:
JSON-RPC bodies, Entra-shaped tokens, FastCGI records as nginx sends them, the example configs,
executeQueries answers as Power BI gives them, Set-Cookie lines, OAuth forms and metadata documents."""
import base64, hashlib, json, os, pathlib, struct

root = pathlib.Path(__file__).resolve().parent.parent
corpus = root / "corpus"

def put(target, name, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())

# json: MCP JSON-RPC bodies and awkward but valid documents.
rpc = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                                                   "clientInfo": {"name": "claude-ai", "version": "0.1.0"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": "a-7", "method": "tools/list", "params": {"cursor": None}},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "execute_dax_query", "arguments": {
        "workspace_id": "9a1b2c3d-0000-4000-8000-00000000000a", "dataset_id": "d1", "query": "EVALUATE TOPN(10, 'Sales')",
        "max_rows": 100, "include_nulls": False}}},
]
for i, m in enumerate(rpc):
    put("json", f"rpc-{i}.json", json.dumps(m))
put("json", "batch.json", json.dumps(rpc[:2]))
put("json", "escapes.json", r'{"s":"\u00e9\ud83d\ude00\n\t\"\\\/","n":-0.0,"e":1.5e-300,"big":12345678901234567890123,"i":-9223372036854775808}')
put("json", "nested.json", "[" * 60 + "]" * 60)
put("json", "scalars.json", '[true,false,null,0,-1,3.25,"",{}]')

# jws: Entra-shaped tokens (the signature is random bytes; verification is not fuzzed here).
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
claims = {"aud": "api://mcp-gateway", "iss": f"https://login.microsoftonline.com/{tenant}/v2.0", "iat": 1764630000,
          "nbf": 1764630000, "exp": 1764633900, "tid": tenant, "oid": "00000000-0000-0000-0000-00000000beef",
          "scp": "access_as_user", "roles": ["MCP.User"], "ver": "2.0", "azp": "c0ffee00-0000-0000-0000-000000000001"}
app = dict(claims, idtyp="app", roles=["MCP.Admin"]); app.pop("scp")
v1 = dict(claims, iss=f"https://sts.windows.net/{tenant}/", ver="1.0")
for name, alg, c, sig in [("delegated", "RS256", claims, 256), ("app-only", "PS256", app, 256), ("v1", "ES256", v1, 64)]:
    header = {"alg": alg, "kid": "nOo3ZDrODXEK1jKWhXslHR_KXEg", "typ": "JWT"}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(c).encode())}.{b64(hashlib.sha512(name.encode()).digest()[:sig])}"
    put("jws", f"token-{name}.txt", token)
    put("jws", f"claims-{name}.json", json.dumps(c))
none_header = b64(json.dumps({"alg": "none"}).encode())
put("jws", "alg-none.txt", f"{none_header}.{b64(json.dumps(claims).encode())}.")

# fastcgi: records as nginx sends them (BEGIN_REQUEST, PARAMS, empty PARAMS, STDIN, empty STDIN).
def record(kind, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBB", 1, kind, 1, len(content), pad, 0) + content + b"\0" * pad
def pair(n, v):
    def ln(x): return bytes([x]) if x < 128 else struct.pack(">I", x | 0x80000000)
    return ln(len(n)) + ln(len(v)) + n + v
def request(params, body, close=True):
    p = b"".join(pair(k.encode(), v.encode()) for k, v in params)
    out = record(1, struct.pack(">HB5x", 1, 0)) + record(4, p) + record(4, b"")
    if body: out += record(5, body)
    return out + (record(5, b"") if close else b"")
body = json.dumps(rpc[0]).encode()
base = [("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/mcp"), ("SCRIPT_NAME", "/mcp"), ("QUERY_STRING", ""),
        ("CONTENT_TYPE", "application/json"), ("CONTENT_LENGTH", str(len(body))), ("REMOTE_ADDR", "127.0.0.1"),
        ("HTTP_AUTHORIZATION", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), ("HTTP_ACCEPT", "application/json, text/event-stream"),
        ("HTTP_MCP_PROTOCOL_VERSION", "2025-06-18"), ("HTTP_COOKIE", "a=1"), ("HTTP_COOKIE", "b=2")]
put("fastcgi", "post-mcp.bin", request(base, body))
put("fastcgi", "get-metadata.bin", request([("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/.well-known/oauth-protected-resource?x=1"),
                                            ("HTTP_HOST", "mcp.example.com")], b""))
put("fastcgi", "chunked-no-length.bin", request([p for p in base if p[0] != "CONTENT_LENGTH"], body))
put("fastcgi", "short-body.bin", request(base, body[:20], close=False))
put("fastcgi", "absolute-uri.bin", request([("REQUEST_METHOD", "POST"), ("REQUEST_URI", "http://host/mcp?q"),
                                            ("CONTENT_LENGTH", "2"), ("HTTP_CONTENT_LENGTH", "9")], b"{}"))
put("fastcgi", "long-param.bin", request([("REQUEST_METHOD", "GET"), ("HTTP_X_LONG", "v" * 300)], b""))

# path-template: a template line, then the arguments.
for i, (t, a) in enumerate([("/api/conversations/{id}/messages", {"id": "42"}), ("/api/user_info", {}),
                            ("/api/items/", {"q": ["a", "b"], "n": 3}), ("/", {}),
                            ("/groups/{workspace}/datasets/{dataset}/refreshes", {"workspace": "w 1", "dataset": 7})]):
    put("path-template", f"template-{i}.txt", t + "\n" + json.dumps(a))

# config: the shipped examples.
for f in sorted((root.parent / "examples").glob("*.json")):
    put("config", f.name, f.read_bytes())

# dax: executeQueries answers in Power BI's shapes (as tests/fakes/fake_powerbi.py gives them).
rows = [{"Sales[Region]": "West", "[Total]": 1250.5}, {"Sales[Region]": "East", "[Total]": None}]
for name, doc in [("rows", {"results": [{"tables": [{"rows": rows}]}]}),
                  ("truncated", {"results": [{"tables": [{"rows": rows[:1], "error": {"code": "MaxRowsExceeded",
                                                                                     "message": "More than 1 rows in a query result"}}]}]}),
                  ("result-error", {"results": [{"error": {"code": "DatasetExecuteQueriesError",
                                                           "message": "The query referenced a column that does not exist"}}]}),
                  ("response-error", {"error": {"code": "DatasetExecuteQueriesError", "message": "The dataset is being updated"}}),
                  ("label", {"informationProtectionLabel": {"id": "f42aa342-8706-4288-bd11-ebb85995028c", "name": "General"},
                             "results": [{"tables": [{"rows": []}, {"rows": rows}]}]})]:
    put("dax", f"{name}.json", json.dumps(doc))

# cookie-jar: Set-Cookie lines as session backends send them.
put("cookie-jar", "session.txt", "session=abc123; Path=/; HttpOnly; Secure; SameSite=Lax\ncsrftoken=Zx9; Max-Age=3600\n")
put("cookie-jar", "expires.txt", 'sid="q1w2"; Expires=Wed, 21 Oct 2099 07:28:00 GMT\nold=1; Max-Age=0\nsid=; Max-Age=-1\n')
put("cookie-jar", "sealed.json", '[{"n":"session","v":"abc123","e":1764637200.5},{"n":"csrftoken","v":"Zx9"}]')

# oauth-form: token requests and authorize queries.
put("oauth-form", "token-code.txt", "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Fclaude.ai%2Fapi%2Fmcp%2Fauth_callback&client_id=https%3A%2F%2Fclient.example.com%2Fmeta.json&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
put("oauth-form", "token-refresh.txt", "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA&scope=openid+offline_access")
put("oauth-form", "authorize.txt", "response_type=code&client_id=abc&redirect_uri=http%3A%2F%2Flocalhost%3A6274%2Fcallback&state=xyz&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&scope=mcp%20offline_access&resource=https%3A%2F%2Fmcp.example.com%2Fmcp")
put("oauth-form", "utf8.txt", "client_name=%C3%A9t%C3%A9&x=&&=y")

# client-metadata: Client ID Metadata Documents.
cid = "https://client.example.com/oauth/metadata.json"
put("client-metadata", "document.json", json.dumps({"client_id": cid, "client_name": "Example MCP Client",
    "redirect_uris": ["https://client.example.com/callback", "http://localhost:33418/callback"],
    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "token_endpoint_auth_method": "none"}))
put("client-metadata", "minimal.json", json.dumps({"client_id": cid, "client_name": "x", "redirect_uris": ["https://client.example.com/cb"]}))
put("client-metadata", "cache-control.txt", "public, max-age=86400, no-transform")
