"""Power BI tools end to end: the official MCP client -> nginx (or Apache) -> mcp-fcgi ->
fake Entra token endpoint + fake Power BI API (tests/fakes), both answering in the
documented shapes. Tenant A is delegated (On-Behalf-Of: Power BI decides per user),
tenant B is switched to service-principal mode by its tenant record (the gateway allows
only the workspaces mapped to the caller), tenant C has not consented to the gateway."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp.types import TextContent

from conftest import BASE_PORT, DEV_CLIENT_ID, DEV_TENANT, e2e_config, mint_token, selected, stack_down, stack_up
from mcp_http import Endpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))
from fake_entra import EntraBehaviour, TokenRegistry, start_entra  # noqa: E402
from fake_powerbi import Dataset, PowerBIModel, Workspace, start_powerbi  # noqa: E402

PORT = BASE_PORT + 20
GATEWAY_APP = "9a9a9a9a-0000-4000-8000-0000000000a9"
SECRET_ENV = "PBI_E2E_CLIENT_SECRET"
SECRET = "e2e-Secret~value.that-must-never-be-logged"
RESOURCE = "https://analysis.windows.net/powerbi/api"

TENANT_A = DEV_TENANT
TENANT_B = "bbbbbbbb-0000-4000-8000-0000000000b0"
TENANT_C = "cccccccc-0000-4000-8000-0000000000c0"
ALICE = "a11ce000-0000-4000-8000-000000000001"
BOB = "b0b00000-0000-4000-8000-000000000002"
CAROL = "ca401000-0000-4000-8000-000000000003"
DAVE = "da7e0000-0000-4000-8000-000000000004"  # tenant C
ERIN = "e4140000-0000-4000-8000-000000000005"  # tenant A, Conditional Access wants MFA

WS_SALES = "5a1e5000-0000-4000-8000-0000000000a1"
WS_HR = "44440000-0000-4000-8000-0000000000a2"
WS_B1 = "b1b10000-0000-4000-8000-0000000000b1"
WS_B2 = "b2b20000-0000-4000-8000-0000000000b2"
DS_SALES = "d5a1e500-0000-4000-8000-0000000000d1"
DS_BIG = "d0b19000-0000-4000-8000-0000000000d2"
DS_BROKEN = "d0b40ce0-0000-4000-8000-0000000000d3"
DS_BUSY = "d0b05100-0000-4000-8000-0000000000d4"
DS_SLOW = "d0510000-0000-4000-8000-0000000000d5"
DS_B1 = "db100000-0000-4000-8000-0000000000d6"
DS_B2 = "db200000-0000-4000-8000-0000000000d7"
TIMEOUT_SECONDS = 3


def build_model() -> PowerBIModel:
    model = PowerBIModel(resource=RESOURCE)
    sp = EntraBehaviour.service_principal_oid
    sales = model.add(Workspace(WS_SALES, "Sales", TENANT_A, members={ALICE: "Admin", ERIN: "Viewer"}))
    sales.datasets[DS_SALES] = Dataset(
        DS_SALES, "Sales model",
        rows=[{"Sales[Region]": "North", "[Total]": 120.5}, {"Sales[Region]": "South", "[Total]": 99}],
        tables=[{"[ID]": 1, "[Name]": "Sales", "[IsHidden]": False}, {"[ID]": 2, "[Name]": "Date", "[IsHidden]": False}],
        columns=[{"[Table]": "Sales", "[Name]": "Region", "[DataType]": "Text"}, {"[Table]": "Date", "[Name]": "Year", "[DataType]": "Int64"}],
        measures=[{"[Table]": "Sales", "[Name]": "Total", "[Expression]": "SUM(Sales[Amount])"}],
        refreshes=[{"requestId": "r-1", "id": 1, "refreshType": "Scheduled", "startTime": "2026-11-22T01:00:00Z",
                    "endTime": "2026-11-22T01:02:00Z", "status": "Completed"}])
    sales.datasets[DS_BIG] = Dataset(DS_BIG, "Big", rows=[{"T[n]": i} for i in range(5)], truncate_after=3, bom=True)
    sales.datasets[DS_BROKEN] = Dataset(DS_BROKEN, "Broken", rows=[{"T[n]": 1}], error_level="result")
    sales.datasets[DS_BUSY] = Dataset(DS_BUSY, "Busy", throttle_seconds=37)
    sales.datasets[DS_SLOW] = Dataset(DS_SLOW, "Slow", rows=[{"T[n]": 1}], delay_seconds=TIMEOUT_SECONDS + 3)
    sales.reports.append({"id": "7e7e7e7e-0000-4000-8000-0000000000e1", "name": "Sales report", "datasetId": DS_SALES, "reportType": "PowerBIReport"})
    sales.dashboards.append({"id": "dada0000-0000-4000-8000-0000000000e2", "displayName": "Sales board", "isReadOnly": False})
    model.add(Workspace(WS_HR, "HR", TENANT_A, members={BOB: "Admin"}))
    b1 = model.add(Workspace(WS_B1, "B one", TENANT_B, members={sp: "Member"}))
    b1.datasets[DS_B1] = Dataset(DS_B1, "B1 model", rows=[{"X[v]": "b1"}])
    b2 = model.add(Workspace(WS_B2, "B two", TENANT_B, members={sp: "Member"}))
    b2.datasets[DS_B2] = Dataset(DS_B2, "B2 model", rows=[{"X[v]": "secret b2"}])
    return model


@pytest.fixture(scope="module")
def fakes():
    registry = TokenRegistry()
    behaviour = EntraBehaviour(client_id=GATEWAY_APP, client_secret=SECRET, resource=RESOURCE,
                               gateway_audiences=[DEV_CLIENT_ID, f"http://127.0.0.1:{PORT}/mcp"],
                               consent_missing_tenants={TENANT_C}, interaction_required_users={ERIN})
    model = build_model()
    entra = start_entra(behaviour, registry)
    powerbi = start_powerbi(model, registry)
    yield behaviour, model, entra.server_address[1], powerbi.server_address[1], registry
    entra.shutdown()
    powerbi.shutdown()


def powerbi_config(port: int, entra_port: int, powerbi_port: int) -> dict:
    cfg = e2e_config(port)
    cfg["auth"]["allowed_tenants"] = [TENANT_B, TENANT_C]
    cfg["tenants"] = {
        TENANT_A: {"name": "Organisation A"},
        TENANT_B: {"name": "Organisation B", "powerbi": {"access_mode": "service_principal"}},
        TENANT_C: {"name": "Organisation C"},
    }
    cfg["credential"] = {"client_id": GATEWAY_APP, "client_secret_env": SECRET_ENV,
                         "authority": f"http://127.0.0.1:{entra_port}", "allow_insecure_http_for_testing": True}
    cfg["powerbi"] = {"api_base": f"http://127.0.0.1:{powerbi_port}/v1.0/myorg", "allow_insecure_http_for_testing": True,
                      "max_rows": 50, "timeout_seconds": TIMEOUT_SECONDS, "max_retries": 1}
    return cfg


@pytest.fixture(scope="module", params=selected(["nginx", "apache-proxy"]))
def stack(request, fakes, binary, tmp_path_factory):
    _, _, entra_port, powerbi_port, _ = fakes
    os.environ[SECRET_ENV] = SECRET  # the responder inherits it through scripts/stack
    s = stack_up(request.param, PORT, binary, tmp_path_factory.mktemp("powerbi"),
                 powerbi_config(PORT, entra_port, powerbi_port), mint=False)
    try:
        mapping(s, "add", "--tenant", TENANT_B, "--user", CAROL, "--workspace", WS_B1)
        yield s
    finally:
        stack_down(s)


def mapping(stack, *args: str) -> None:
    done = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), "mapping", *args, "--config", str(stack.run_dir / "config.json")],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def token(stack, tenant: str, oid: str, roles: str = "MCP.User", ttl: int = 3600) -> str:
    return mint_token(stack, "--tenant", tenant, "--oid", oid, "--roles", roles, "--scopes", "mcp.tools", "--ttl", str(ttl))


def call(stack, tok: str, name: str, args: dict):
    """One tools/call through the web server with the official client; returns the result."""
    ep = Endpoint(server=stack.server, base_url=stack.base_url, mcp_path="/mcp", token=tok, stack=stack)

    async def scenario():
        async with ep.client() as client:
            return await client.call_tool(name, args)

    return anyio.run(scenario)


def ok(result) -> dict:
    assert not result.is_error, f"tool failed: {text(result)}"
    assert result.structured_content is not None
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


def text(result) -> str:
    return " ".join(b.text for b in result.content if isinstance(b, TextContent))


def failed(result) -> str:
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return text(result)


def ids(items: list[dict]) -> list[str]:
    return sorted(i["id"] for i in items)


# ---------------------------------------------------------------- delegated (tenant A)


def test_delegated_users_see_only_their_own_workspaces(stack, fakes):
    alice, bob = token(stack, TENANT_A, ALICE), token(stack, TENANT_A, BOB)
    a = ok(call(stack, alice, "list_workspaces", {}))
    assert a["accessMode"] == "delegated"
    assert ids(a["workspaces"]) == [WS_SALES]
    assert ids(ok(call(stack, bob, "list_workspaces", {}))["workspaces"]) == [WS_HR]
    # Power BI, not the gateway, refuses Alice in Bob's workspace; the error says what is missing.
    message = failed(call(stack, alice, "list_datasets", {"workspace_id": WS_HR}))
    assert "refused" in message and "access to the workspace" in message, message
    datasets = ok(call(stack, alice, "list_datasets", {"workspace_id": WS_SALES}))
    assert DS_SALES in ids(datasets["datasets"])
    assert ok(call(stack, alice, "list_reports", {"workspace_id": WS_SALES}))["reports"][0]["name"] == "Sales report"
    assert ok(call(stack, alice, "list_dashboards", {"workspace_id": WS_SALES}))["dashboards"][0]["displayName"] == "Sales board"


def test_obo_tokens_are_cached_per_incoming_token(stack, fakes):
    behaviour = fakes[0]
    # A lifetime no other test uses: tokens minted in the same second would otherwise be identical.
    alice = token(stack, TENANT_A, ALICE, ttl=3333)
    before = behaviour.counts["obo"]
    for _ in range(3):
        ok(call(stack, alice, "list_workspaces", {}))
    assert behaviour.counts["obo"] == before + 1, (before, behaviour.counts)


def test_dax_query_rows_truncation_bom_and_errors(stack):
    alice = token(stack, TENANT_A, ALICE)
    base = {"workspace_id": WS_SALES}
    r = ok(call(stack, alice, "execute_dax_query", {**base, "dataset_id": DS_SALES, "query": "EVALUATE SUMMARIZECOLUMNS(Sales[Region])"}))
    assert r["rows"] == [{"Sales[Region]": "North", "[Total]": 120.5}, {"Sales[Region]": "South", "[Total]": 99}]
    assert r["columns"] == ["Sales[Region]", "[Total]"] and r["truncated"] is False and r["errors"] == []
    capped = ok(call(stack, alice, "execute_dax_query", {**base, "dataset_id": DS_SALES, "query": "EVALUATE 'Sales'", "max_rows": 1}))
    assert capped["rowCount"] == 1 and capped["truncated"] is True
    # HTTP 200 with a BOM, three of five rows and a table-level error: a partial result, said so.
    big = ok(call(stack, alice, "execute_dax_query", {**base, "dataset_id": DS_BIG, "query": "EVALUATE 'T'"}))
    assert big["rowCount"] == 3 and big["truncated"] is True
    assert big["errors"] == [{"level": "table", "code": "MaxRowsExceeded", "message": "More than 3 rows in a query result"}]
    assert any("stopped the result early" in reason for reason in big["truncationReasons"])
    broken = failed(call(stack, alice, "execute_dax_query", {**base, "dataset_id": DS_BROKEN, "query": "EVALUATE 'T'"}))
    assert "result: DatasetExecuteQueriesError" in broken, broken
    syntax = failed(call(stack, alice, "execute_dax_query", {**base, "dataset_id": DS_SALES, "query": "EVALUATE SYNTAXERROR"}))
    assert "The syntax for 'SYNTAXERROR' is incorrect" in syntax, syntax


def test_dataset_schema_and_refresh_history(stack):
    alice = token(stack, TENANT_A, ALICE)
    schema = ok(call(stack, alice, "get_dataset_schema", {"workspace_id": WS_SALES, "dataset_id": DS_SALES}))
    sales = next(t for t in schema["tables"] if t["name"] == "Sales")
    assert sales["columns"] == [{"Name": "Region", "DataType": "Text"}]
    assert sales["measures"] == [{"Name": "Total", "Expression": "SUM(Sales[Amount])"}]
    history = ok(call(stack, alice, "get_refresh_history", {"workspace_id": WS_SALES, "dataset_id": DS_SALES, "top": 5}))
    assert history["refreshes"][-1]["status"] == "Completed"


def test_throttling_and_timeouts_read_clearly(stack):
    alice = token(stack, TENANT_A, ALICE)
    started = time.monotonic()
    message = failed(call(stack, alice, "execute_dax_query", {"workspace_id": WS_SALES, "dataset_id": DS_BUSY, "query": "EVALUATE {1}"}))
    assert "throttling" in message and "retry in 37 s" in message, message
    assert time.monotonic() - started < 5, "a long Retry-After is handed back, not slept through"
    started = time.monotonic()
    slow = failed(call(stack, alice, "execute_dax_query", {"workspace_id": WS_SALES, "dataset_id": DS_SLOW, "query": "EVALUATE {1}"}))
    assert f"did not answer within {TIMEOUT_SECONDS} s" in slow, slow
    assert time.monotonic() - started < TIMEOUT_SECONDS + 2.5


def test_trigger_refresh_needs_admin(stack, fakes):
    model = fakes[1]
    user = Endpoint(server=stack.server, base_url=stack.base_url, mcp_path="/mcp", token=token(stack, TENANT_A, ALICE), stack=stack)
    listed = [t["name"] for t in user.modern("tools/list").result["tools"]]
    assert "execute_dax_query" in listed and "trigger_refresh" not in listed
    before = len(model.requests_for("/refreshes"))
    denied = user.legacy("tools/call", {"name": "trigger_refresh", "arguments": {"workspace_id": WS_SALES, "dataset_id": DS_SALES}})
    assert denied.status == 403 and "admin" in denied.error["message"], denied
    assert len(model.requests_for("/refreshes")) == before
    admin = token(stack, TENANT_A, ALICE, roles="MCP.User,MCP.Admin")
    started = ok(call(stack, admin, "trigger_refresh", {"workspace_id": WS_SALES, "dataset_id": DS_SALES}))
    assert started["accepted"] is True and started["requestId"]
    history = ok(call(stack, admin, "get_refresh_history", {"workspace_id": WS_SALES, "dataset_id": DS_SALES}))
    assert history["refreshes"][0]["requestId"] == started["requestId"] and history["refreshes"][0]["status"] == "Unknown"


@pytest.mark.parametrize("kind", ["html", "truncated", "shapeless"])
def test_a_broken_success_body_is_a_tool_error_not_an_empty_list(stack, fakes, kind):
    model = fakes[1]
    alice = token(stack, TENANT_A, ALICE)
    model.broken_success = kind
    try:
        for name, args in [("list_workspaces", {}), ("list_datasets", {"workspace_id": WS_SALES}),
                           ("get_refresh_history", {"workspace_id": WS_SALES, "dataset_id": DS_SALES})]:
            message = failed(call(stack, alice, name, args))
            assert "Power BI answered 200 with a body that is not" in message, (name, kind, message)
    finally:
        model.broken_success = None
    assert ids(ok(call(stack, alice, "list_workspaces", {}))["workspaces"]) == [WS_SALES]


# ---------------------------------------------------------------- service principal (tenant B)


def test_service_principal_mode_sees_and_queries_only_mapped_workspaces(stack, fakes):
    behaviour, model = fakes[0], fakes[1]
    carol = token(stack, TENANT_B, CAROL)
    listing = ok(call(stack, carol, "list_workspaces", {}))
    assert listing["accessMode"] == "service_principal"
    assert ids(listing["workspaces"]) == [WS_B1], "the service principal can see B2 too, the caller may not"
    rows = ok(call(stack, carol, "execute_dax_query", {"workspace_id": WS_B1, "dataset_id": DS_B1, "query": "EVALUATE 'X'"}))["rows"]
    assert rows == [{"X[v]": "b1"}]
    assert behaviour.counts["client_credentials"] >= 1
    for name, args in [("list_datasets", {}), ("list_reports", {}), ("list_dashboards", {}),
                       ("execute_dax_query", {"dataset_id": DS_B2, "query": "EVALUATE 'X'"}),
                       ("get_dataset_schema", {"dataset_id": DS_B2}), ("get_refresh_history", {"dataset_id": DS_B2})]:
        message = failed(call(stack, carol, name, {"workspace_id": WS_B2, **args}))
        assert "not mapped to you" in message, (name, message)
    assert model.requests_for(WS_B2) == [], "refused before any upstream call"


def test_cross_tenant_workspace_ids_are_refused(stack, fakes):
    model = fakes[1]
    alice, carol = token(stack, TENANT_A, ALICE), token(stack, TENANT_B, CAROL)
    sp = EntraBehaviour.service_principal_oid
    seen_before = len([r for r in model.requests_for(WS_SALES) if r[2] == sp])
    # Delegated: the OBO token is for tenant A, where tenant B's workspace does not exist.
    message = failed(call(stack, alice, "list_datasets", {"workspace_id": WS_B1}))
    assert "Not found" in message, message
    # Service principal: tenant A's workspace is not mapped to Carol, so it never leaves the gateway.
    assert "not mapped to you" in failed(call(stack, carol, "list_datasets", {"workspace_id": WS_SALES}))
    assert len([r for r in model.requests_for(WS_SALES) if r[2] == sp]) == seen_before
    # Even a wrong mapping cannot cross tenants: the app token is for tenant B only.
    mapping(stack, "add", "--tenant", TENANT_B, "--user", CAROL, "--workspace", WS_SALES)
    try:
        assert "Not found" in failed(call(stack, carol, "list_datasets", {"workspace_id": WS_SALES}))
    finally:
        mapping(stack, "remove", "--tenant", TENANT_B, "--user", CAROL, "--workspace", WS_SALES)


def test_ids_that_are_not_guids_are_refused_before_upstream(stack, fakes):
    model = fakes[1]
    ep = Endpoint(server=stack.server, base_url=stack.base_url, mcp_path="/mcp", token=token(stack, TENANT_A, ALICE), stack=stack)
    before = len(model.log)
    for bad in ["../../admin", f"{WS_SALES}/../{WS_HR}", "5a1e5000", f"{WS_SALES}?$filter=x"]:
        r = ep.legacy("tools/call", {"name": "list_datasets", "arguments": {"workspace_id": bad}})
        assert r.error["code"] == -32602 and "GUID" in r.error["message"], r
    r = ep.legacy("tools/call", {"name": "execute_dax_query", "arguments": {"workspace_id": WS_SALES, "dataset_id": "x", "query": "EVALUATE {1}"}})
    assert r.error["code"] == -32602, r
    r = ep.legacy("tools/call", {"name": "execute_dax_query", "arguments": {"workspace_id": WS_SALES, "dataset_id": DS_SALES, "query": "x" * 10_001}})
    assert r.error["code"] == -32602 and "at most 10000 characters" in r.error["message"], r
    assert len(model.log) == before


# ---------------------------------------------------------------- token failures


def test_missing_consent_and_interaction_required_read_clearly(stack):
    consent = failed(call(stack, token(stack, TENANT_C, DAVE), "list_workspaces", {}))
    assert "administrator of your organisation must grant" in consent and RESOURCE in consent, consent
    assert "AADSTS65001" in consent and "Trace ID" not in consent, consent
    mfa = failed(call(stack, token(stack, TENANT_A, ERIN), "list_workspaces", {}))
    assert "sign in again" in mfa and "AADSTS50079" in mfa, mfa


def test_interaction_required_becomes_a_claims_challenge_for_capable_clients(stack):
    capable = mint_token(stack, "--tenant", TENANT_A, "--oid", ERIN, "--roles", "MCP.User", "--scopes", "mcp.tools",
                         "--client-capabilities", "cp1")
    ep = Endpoint(server=stack.server, base_url=stack.base_url, mcp_path="/mcp", token=capable, stack=stack)
    r = ep.legacy("tools/call", {"name": "list_workspaces", "arguments": {}})
    assert r.status == 401, r
    challenge = r.headers["www-authenticate"]
    assert 'error="insufficient_claims"' in challenge and 'claims="' in challenge, challenge
    assert "resource_metadata=" in challenge, challenge


def test_no_secret_or_token_reaches_the_logs_or_audit(stack, fakes):
    registry = fakes[4]
    ok(call(stack, token(stack, TENANT_A, ALICE), "list_workspaces", {}))
    logs = "".join(p.read_text(errors="replace") for p in (stack.run_dir / "logs").glob("*.log"))
    done = subprocess.run([str(stack.run_dir / "bin" / "mcp-fcgi"), "audit", "export", "--since", "1d", "--config",
                           str(stack.run_dir / "config.json")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    audit = done.stdout
    # Both haystacks must hold what they are searched for, or the checks below prove nothing.
    assert logs.strip(), "the stack wrote logs"
    assert any(json.loads(line).get("tool") == "list_workspaces" for line in audit.splitlines()), audit[-2000:]
    with registry.lock:
        issued = list(registry.issued)
    assert issued, "the fake issued tokens"
    for haystack in (logs, audit):
        assert SECRET not in haystack
        assert not any(t in haystack for t in issued)
