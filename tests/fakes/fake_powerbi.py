"""A fake Power BI REST API (https://api.powerbi.com/v1.0/myorg) for the gateway's tests.

Routes, following the REST reference: GET /groups; GET /groups/{g}/datasets, /reports,
/dashboards; POST /groups/{g}/datasets/{d}/executeQueries; GET and POST
/groups/{g}/datasets/{d}/refreshes. Answers depend on who the bearer token (issued by
fake_entra) speaks for: a user sees the workspaces they are a member of, the gateway's
service principal those it was added to, and nobody sees another tenant's workspaces.

Datasets can be told to misbehave the documented ways: 429 with Retry-After, truncated
results (HTTP 200 with a table-level error), errors at the response or result level, a
leading UTF-8 BOM, a DAX syntax error (HTTP 400 with pbi.error details), slowness; and
every GET can be told to answer 200 with a broken body (`broken_success`).
Errors use Power BI's shape: {"error": {"code": …, "message": …}}.
"""
from __future__ import annotations

import gzip
import json
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fake_entra import TokenRegistry


@dataclass
class Dataset:
    id: str
    name: str
    # Rows every ordinary DAX query returns.
    rows: list[dict] = field(default_factory=list)
    tables: list[dict] = field(default_factory=list)  # INFO.VIEW.TABLES rows
    columns: list[dict] = field(default_factory=list)  # INFO.VIEW.COLUMNS rows
    measures: list[dict] = field(default_factory=list)  # INFO.VIEW.MEASURES rows
    truncate_after: int | None = None  # return this many rows plus a table-level error
    error_level: str | None = None  # "response" or "result": an error object at that level, no rows
    bom: bool = False
    throttle_seconds: int | None = None  # 429 with this Retry-After
    delay_seconds: float = 0
    refreshes: list[dict] = field(default_factory=list)


@dataclass
class Workspace:
    id: str
    name: str
    tenant: str
    # Object ids (users or the gateway's service principal) and their workspace role.
    members: dict[str, str] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    reports: list[dict] = field(default_factory=list)
    dashboards: list[dict] = field(default_factory=list)


@dataclass
class PowerBIModel:
    resource: str
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    # (method, path, caller oid) of every request that reached the API.
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # While set, every GET answers 200 with a broken body: "html" (a proxy's page), "truncated"
    # (JSON cut short, with a matching Content-Length) or "shapeless" (JSON without "value").
    broken_success: str | None = None

    def add(self, ws: Workspace) -> Workspace:
        self.workspaces[ws.id] = ws
        return ws

    def requests_for(self, fragment: str) -> list[tuple[str, str, str | None]]:
        with self.lock:
            return [r for r in self.log if fragment.lower() in r[1].lower()]


BROKEN_BODIES = {
    "html": b"<html><body>Please sign in to the proxy</body></html>",
    "truncated": b'{"@odata.context":"http://fake/v1.0/myorg/$metadata#groups","value":[{"id":"5a1e5000-0000-4000-8000-00',
    "shapeless": b'{"@odata.context":"http://fake/v1.0/myorg/$metadata#groups"}',
}

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class PowerBIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakePowerBI/1"
    # Headers and body go out in two writes: without TCP_NODELAY the second waits for a delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    @property
    def model(self) -> PowerBIModel:
        return self.server.model  # type: ignore[attr-defined]

    def reply(self, status: int, body: dict | None, headers: dict[str, str] | None = None, bom: bool = False) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        if bom:
            data = b"\xef\xbb\xbf" + data
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "") and len(data) > 1024
        if gzipped:
            data = gzip.compress(data)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(data)))
        headers = {"RequestId": str(uuid.uuid4()), **(headers or {})}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def reply_raw(self, status: int, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fail(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.reply(status, {"error": {"code": code, "message": message}}, headers)

    def caller(self) -> dict | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        claims = self.server.registry.lookup(auth[7:])  # type: ignore[attr-defined]
        if claims is None or claims.get("aud") != self.model.resource:
            return None
        return claims

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        who = self.caller()
        with self.model.lock:
            self.model.log.append((method, url.path, who.get("oid") if who else None))
        if who is None:
            return self.fail(401, "TokenExpired", "Access token has expired, resubmit with a new access token")
        if method == "GET" and self.model.broken_success:
            return self.reply_raw(200, BROKEN_BODIES[self.model.broken_success])
        prefix = "/v1.0/myorg"
        path = url.path[len(prefix):] if url.path.startswith(prefix) else None
        if path is None:
            return self.fail(404, "NotFound", "No such API")
        if method == "GET" and path == "/groups":
            visible = [w for w in self.model.workspaces.values() if w.tenant == who["tid"] and who["oid"] in w.members]
            return self.reply(200, {"@odata.context": "http://fake/v1.0/myorg/$metadata#groups",
                                    "value": [{"id": w.id, "name": w.name, "isReadOnly": False, "isOnDedicatedCapacity": True, "type": "Workspace"} for w in visible]})
        m = re.fullmatch(rf"/groups/({GUID})/(datasets|reports|dashboards)(?:/({GUID})/(executeQueries|refreshes))?", path)
        if not m:
            return self.fail(404, "PowerBIEntityNotFound", "Couldn't find the requested resource")
        ws = self.model.workspaces.get(m.group(1).lower())
        # Another tenant's workspace does not exist from this tenant's point of view.
        if ws is None or ws.tenant != who["tid"]:
            return self.fail(404, "PowerBIEntityNotFound", f"Workspace {m.group(1)} not found")
        role = ws.members.get(who["oid"])
        if role is None:
            return self.fail(401, "PowerBINotAuthorizedException", "The caller is not a member of the workspace")
        kind, item, action = m.group(2), m.group(3), m.group(4)
        if item is None:
            if method != "GET":
                return self.fail(405, "MethodNotAllowed", "Use GET")
            if kind == "datasets":
                return self.reply(200, {"value": [{"id": d.id, "name": d.name, "configuredBy": "owner@contoso.test", "isRefreshable": True,
                                                   "webUrl": f"https://app.powerbi.com/groups/{ws.id}/datasets/{d.id}"} for d in ws.datasets.values()]})
            return self.reply(200, {"value": ws.reports if kind == "reports" else ws.dashboards})
        ds = ws.datasets.get(item.lower()) if kind == "datasets" else None
        if ds is None:
            return self.fail(404, "PowerBIEntityNotFound", f"Dataset {item} not found")
        if ds.delay_seconds:
            time.sleep(ds.delay_seconds)
        if ds.throttle_seconds is not None:
            return self.fail(429, "TooManyRequests", "You have exceeded the amount of requests allowed in the current time frame",
                             {"Retry-After": str(ds.throttle_seconds)})
        if action == "refreshes":
            if method == "GET":
                top = int(urllib.parse.parse_qs(url.query).get("$top", ["60"])[0])
                return self.reply(200, {"value": ds.refreshes[:top]})
            if role not in ("Admin", "Member", "Contributor"):
                return self.fail(403, "PowerBINotAuthorizedException", "Refreshing needs write access to the dataset")
            request_id = str(uuid.uuid4())
            ds.refreshes.insert(0, {"requestId": request_id, "id": len(ds.refreshes) + 1, "refreshType": "ViaApi",
                                    "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "status": "Unknown"})
            return self.reply(202, None, {"RequestId": request_id, "Location": f"{prefix}{path}/{request_id}"})
        if method != "POST":
            return self.fail(405, "MethodNotAllowed", "Use POST")
        return self.execute(ds, body)

    def execute(self, ds: Dataset, body: bytes) -> None:
        try:
            queries = json.loads(body)["queries"]
            query = queries[0]["query"]
        except (ValueError, KeyError, IndexError, TypeError):
            return self.fail(400, "BadRequest", "The request body must hold queries[0].query")
        if len(queries) != 1:
            return self.fail(400, "BadRequest", "Only one query per request is supported")
        if "SYNTAXERROR" in query:
            return self.reply(400, {"error": {"code": "DatasetExecuteQueriesError", "pbi.error": {
                "code": "DatasetExecuteQueriesError", "parameters": {},
                "details": [{"code": "DetailsMessage", "detail": {"type": 1, "value": "Query (1, 10) The syntax for 'SYNTAXERROR' is incorrect."}},
                            {"code": "AnalysisServicesErrorCode", "detail": {"type": 1, "value": "3238002009"}}]}}})
        if "INFO.VIEW.TABLES" in query:
            rows = ds.tables
        elif "INFO.VIEW.COLUMNS" in query:
            rows = ds.columns
        elif "INFO.VIEW.MEASURES" in query:
            rows = ds.measures
        else:
            rows = ds.rows
        table: dict = {"rows": rows}
        result: dict = {"tables": [table]}
        answer: dict = {"results": [result]}
        if ds.truncate_after is not None and len(rows) > ds.truncate_after:
            table["rows"] = rows[:ds.truncate_after]
            table["error"] = {"code": "MaxRowsExceeded", "message": f"More than {ds.truncate_after} rows in a query result"}
        if ds.error_level == "result":
            result.pop("tables")
            result["error"] = {"code": "DatasetExecuteQueriesError", "message": "The query referenced a column that does not exist"}
        elif ds.error_level == "response":
            answer = {"error": {"code": "DatasetExecuteQueriesError", "message": "The dataset is being updated; the query was cancelled"}}
        self.reply(200, answer, bom=ds.bom)


def start_powerbi(model: PowerBIModel, registry: TokenRegistry, port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), PowerBIHandler)
    server.daemon_threads = True
    server.model = model  # type: ignore[attr-defined]
    server.registry = registry  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, name="fake-powerbi", daemon=True).start()
    return server
