import GatewayStore
import GatewaySupport
import EntraAuth
import Foundation
import MCPJSON
import XCTest
@testable import MCPGateway
import UpstreamHTTP

/// A broker that hands out "tok:<tenant>:<grant>" tokens, or throws what a test sets.
final class ScriptedBroker: TokenBroker, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var requests: [TokenRequest] = []
    var failure: TokenBrokerError?

    func token(_ r: TokenRequest) throws -> BrokeredToken {
        lock.lock(); requests.append(r); let f = failure; lock.unlock()
        if let f { throw f }
        switch r.grant {
        case .onBehalfOf(_, let user): return BrokeredToken(accessToken: "obo:\(user)", expiresAt: 4_000_000_000)
        case .clientCredentials: return BrokeredToken(accessToken: "app:\(r.tenantId)", expiresAt: 4_000_000_000)
        }
    }
    var count: Int { lock.lock(); defer { lock.unlock() }; return requests.count }
}

final class PowerBIToolsTests: XCTestCase {
    static let tenant = GatewayFixture.tenant
    static let user = "11111111-1111-4111-8111-111111111111"
    static let wsA = "aaaaaaaa-0000-4000-8000-00000000000a"
    static let wsB = "bbbbbbbb-0000-4000-8000-00000000000b"
    static let ds = "dddddddd-0000-4000-8000-00000000000d"

    var dir = ""
    var store: WorkspaceMappingStore!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "pbi-tools-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        store = try SQLiteStore(path: dir + "/store.db", durable: false)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    private func config(_ mode: PowerBIAccessMode = .delegated, maxRows: Int = 1000) -> PowerBIConfig {
        var c = PowerBIConfig()
        c.apiBase = "https://api.example.test/v1.0/myorg"
        c.accessMode = mode
        c.maxRows = maxRows
        return c
    }

    private func tools(_ http: HTTPClient, _ broker: TokenBroker, _ c: PowerBIConfig) -> [String: Tool] {
        Dictionary(uniqueKeysWithValues: PowerBITools.tools(PowerBIClient(config: c, http: http, broker: broker, store: store))
            .map { ($0.definition.name, $0) })
    }

    private func caller(appOnly: Bool = false, capabilities: [String] = [], tenantRecord: TenantRecord? = nil,
                        groups: [String]? = nil, groupsOverflowed: Bool = false) -> Caller {
        let p = Principal(tenantId: Self.tenant, objectId: Self.user, subject: Self.user, issuer: "iss", clientAppId: "app",
                          scopes: appOnly ? [] : ["mcp.tools"], roles: [], groups: groups, tokenVersion: "2.0", isAppOnly: appOnly,
                          expiresAt: 4_000_000_000, displayName: nil, userPrincipalName: nil, clientCapabilities: capabilities,
                          groupsOverflowed: groupsOverflowed)
        return Caller(key: "\(Self.tenant)/\(Self.user)", permissions: ["user", "admin"], tenantId: Self.tenant,
                      principal: p, bearerToken: "incoming.user.token", tenant: tenantRecord) { JSONObject() }
    }

    private func context(_ c: Caller) -> ToolContext {
        ToolContext(caller: c, requestId: "r1", protocolVersion: "2025-11-25", era: .legacy,
                    server: ServerIdentity(name: "t", version: "1", instructions: nil, startedAt: 0))
    }

    private func run(_ tool: Tool?, _ args: JSONObject, caller c: Caller? = nil) throws -> ToolResult {
        let tool = try XCTUnwrap(tool)
        if let problem = SchemaValidator.validate(.object(args), against: tool.definition.inputSchema) { throw ToolError("schema: \(problem)") }
        let result = try tool.call(arguments: args, context: context(c ?? caller()))
        if let schema = tool.definition.outputSchema, let sc = result.structuredContent {
            XCTAssertNil(SchemaValidator.validate(sc, against: schema), "structured output matches the output schema")
        }
        return result
    }

    private func groupsAnswer(_ ids: [String]) -> UpstreamResponse {
        jsonResponse(200, ["@odata.context": "x", "value": .array(ids.map { ["id": .string($0), "name": .string("WS \($0.prefix(4))"), "isReadOnly": false] })])
    }

    // MARK: - Access modes

    func testDelegatedListingUsesOnBehalfOfAndNeverForwardsTheIncomingToken() throws {
        let http = RecordingHTTPClient { [self] _ in groupsAnswer([Self.wsA, Self.wsB]) }
        let broker = ScriptedBroker()
        let r = try run(tools(http, broker, config())["list_workspaces"], [:])
        XCTAssertEqual(r.structuredContent?["count"]?.intValue, 2)
        XCTAssertEqual(r.structuredContent?["accessMode"]?.stringValue, "delegated")
        guard case .onBehalfOf(let assertion, let key) = broker.requests[0].grant else { return XCTFail() }
        XCTAssertEqual(assertion, "incoming.user.token")
        XCTAssertEqual(key, "\(Self.tenant)/\(Self.user)")
        XCTAssertEqual(broker.requests[0].scopes, ["https://analysis.windows.net/powerbi/api/.default"])
        let sent = http.requests[0]
        XCTAssertEqual(sent.url, "https://api.example.test/v1.0/myorg/groups")
        XCTAssertEqual(sent.headers.first { $0.0 == "Authorization" }?.1, "Bearer obo:\(Self.tenant)/\(Self.user)")
        XCTAssertFalse(sent.headers.contains { $0.1.contains("incoming.user.token") })
    }

    func testAppOnlyCallerCannotUseDelegatedMode() throws {
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["value": []]) }
        let broker = ScriptedBroker()
        XCTAssertThrowsError(try run(tools(http, broker, config())["list_workspaces"], [:], caller: caller(appOnly: true))) {
            XCTAssertTrue("\($0)".contains("app-only token cannot use it"), "\($0)")
        }
        XCTAssertEqual(http.count + broker.count, 0)
    }

    func testOtherProvidersUsersGetServicePrincipalModeWithMappingsOnly() throws {
        let googleUser = "oidc:google:110169484474386276334"
        let p = Principal(tenantId: Self.tenant, objectId: googleUser, subject: "110169484474386276334", issuer: "https://accounts.google.com",
                          clientAppId: nil, scopes: [], roles: [], groups: nil, tokenVersion: nil, isAppOnly: false,
                          expiresAt: 4_000_000_000, displayName: nil, userPrincipalName: nil, provider: "oidc:google")
        let google = Caller(key: "\(Self.tenant)/\(googleUser)", permissions: ["user"], tenantId: Self.tenant, principal: p) { JSONObject() }
        let http = RecordingHTTPClient { [self] _ in groupsAnswer([Self.wsA, Self.wsB]) }
        let broker = ScriptedBroker()
        XCTAssertThrowsError(try run(tools(http, broker, config())["list_workspaces"], [:], caller: google)) {
            XCTAssertTrue("\($0)".contains("only Entra users can use it here; other sign-ins need the tenant in service-principal mode"), "\($0)")
        }
        XCTAssertEqual(http.count + broker.count, 0)
        try store.addMappings([WorkspaceMapping(tenant: Self.tenant, kind: .user, principal: googleUser, workspace: Self.wsB)])
        let r = try run(tools(http, broker, config(.servicePrincipal))["list_workspaces"], [:], caller: google)
        XCTAssertEqual(r.structuredContent?["workspaces"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [Self.wsB])
        guard case .clientCredentials = broker.requests[0].grant else { return XCTFail("service principal uses client credentials") }
        XCTAssertThrowsError(try WorkspaceMapping(tenant: Self.tenant, kind: .user, principal: "someone:1", workspace: Self.wsB))
        XCTAssertThrowsError(try WorkspaceMapping(tenant: Self.tenant, kind: .group, principal: googleUser, workspace: Self.wsB))
    }

    func testServicePrincipalModeShowsAndReachesOnlyMappedWorkspaces() throws {
        try store.addMappings([WorkspaceMapping(tenant: Self.tenant, kind: .user, principal: Self.user, workspace: Self.wsA)])
        let http = RecordingHTTPClient { [self] r in
            r.url.hasSuffix("/groups") ? groupsAnswer([Self.wsA, Self.wsB]) : jsonResponse(200, ["value": [["id": .string(Self.ds), "name": "Sales"]]])
        }
        let broker = ScriptedBroker()
        let t = tools(http, broker, config(.servicePrincipal))
        let list = try run(t["list_workspaces"], [:])
        XCTAssertEqual(list.structuredContent?["workspaces"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [Self.wsA])
        guard case .clientCredentials = broker.requests[0].grant else { return XCTFail("service principal uses client credentials") }
        XCTAssertEqual(broker.requests[0].tenantId, Self.tenant)

        _ = try run(t["list_datasets"], ["workspace_id": .string(Self.wsA.uppercased())])
        XCTAssertEqual(http.requests.last?.url, "https://api.example.test/v1.0/myorg/groups/\(Self.wsA)/datasets")

        let before = (http.count, broker.count)
        for name in ["list_datasets", "list_reports", "list_dashboards"] {
            XCTAssertThrowsError(try run(t[name], ["workspace_id": .string(Self.wsB)])) { XCTAssertTrue("\($0)".contains("not mapped to you"), "\($0)") }
        }
        XCTAssertThrowsError(try run(t["execute_dax_query"], ["workspace_id": .string(Self.wsB), "dataset_id": .string(Self.ds), "query": "EVALUATE {1}"]))
        XCTAssertThrowsError(try run(t["get_dataset_schema"], ["workspace_id": .string(Self.wsB), "dataset_id": .string(Self.ds)]))
        XCTAssertThrowsError(try run(t["get_refresh_history"], ["workspace_id": .string(Self.wsB), "dataset_id": .string(Self.ds)]))
        XCTAssertThrowsError(try run(t["trigger_refresh"], ["workspace_id": .string(Self.wsB), "dataset_id": .string(Self.ds)]))
        XCTAssertTrue(before == (http.count, broker.count), "refused before any token or upstream call")
    }

    func testServicePrincipalGroupMappingAndEmptyMapping() throws {
        let group = "99999999-0000-4000-8000-000000000009"
        let http = RecordingHTTPClient { [self] _ in groupsAnswer([Self.wsA, Self.wsB]) }
        let t = tools(http, ScriptedBroker(), config(.servicePrincipal))
        // Nothing mapped: nothing shown, and Power BI is not even asked.
        XCTAssertEqual(try run(t["list_workspaces"], [:]).structuredContent?["count"]?.intValue, 0)
        XCTAssertEqual(http.count, 0)
        try store.addMappings([WorkspaceMapping(tenant: Self.tenant, kind: .group, principal: group, workspace: Self.wsB)])
        let r = try run(t["list_workspaces"], [:], caller: caller(groups: [group]))
        XCTAssertEqual(r.structuredContent?["workspaces"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [Self.wsB])
        // Group overage: the token cannot list the groups, and the refusal says why a group mapping did not apply.
        let args: JSONObject = ["workspace_id": .string(Self.wsB)]
        XCTAssertThrowsError(try run(t["list_datasets"], args, caller: caller(groups: nil, groupsOverflowed: true))) { e in
            XCTAssertTrue("\(e)".contains("more groups than your sign-in token can list"), "\(e)")
        }
    }

    func testTenantSettingsOverrideTheInstance() throws {
        try store.addMappings([WorkspaceMapping(tenant: Self.tenant, kind: .user, principal: Self.user, workspace: Self.wsA),
                               WorkspaceMapping(tenant: Self.tenant, kind: .user, principal: Self.user, workspace: Self.wsB)])
        let http = RecordingHTTPClient { [self] _ in groupsAnswer([Self.wsA, Self.wsB]) }
        let broker = ScriptedBroker()
        let t = tools(http, broker, config(.delegated))
        let record = TenantRecord(id: Self.tenant, name: "Contoso",
                                  powerBI: PowerBITenantSettings(accessMode: .servicePrincipal, workspaces: [Self.wsB]))
        let r = try run(t["list_workspaces"], [:], caller: caller(tenantRecord: record))
        XCTAssertEqual(r.structuredContent?["accessMode"]?.stringValue, "service_principal")
        XCTAssertEqual(r.structuredContent?["workspaces"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [Self.wsB])
        XCTAssertThrowsError(try run(t["list_reports"], ["workspace_id": .string(Self.wsA)], caller: caller(tenantRecord: record)))
        // A delegated tenant with a workspace list is held to it as well.
        let delegated = TenantRecord(id: Self.tenant, name: "Fabrikam", powerBI: PowerBITenantSettings(workspaces: [Self.wsA]))
        let d = try run(t["list_workspaces"], [:], caller: caller(tenantRecord: delegated))
        XCTAssertEqual(d.structuredContent?["workspaces"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, [Self.wsA])
        XCTAssertThrowsError(try run(t["list_reports"], ["workspace_id": .string(Self.wsB)], caller: caller(tenantRecord: delegated)))
    }

    func testIdsMustBeGUIDs() throws {
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["value": []]) }
        let t = tools(http, ScriptedBroker(), config())
        for bad in ["../admin", "aaaaaaaa-0000-4000-8000-00000000000a/../x", "", "not-a-guid"] {
            XCTAssertThrowsError(try run(t["list_datasets"], ["workspace_id": .string(bad)]))
            // Past the schema too: the tool checks again before building a URL.
            XCTAssertThrowsError(try t["list_datasets"]!.call(arguments: ["workspace_id": .string(bad)], context: context(caller())))
        }
        XCTAssertThrowsError(try t["execute_dax_query"]!.call(arguments: ["workspace_id": .string(Self.wsA), "dataset_id": "x?y", "query": "EVALUATE {1}"],
                                                              context: context(caller())))
        XCTAssertEqual(http.count, 0)
    }

    // MARK: - DAX

    func testDAXQueryWithBOMTruncationAndErrorsAtEveryLevel() throws {
        let body: [UInt8] = [0xEF, 0xBB, 0xBF] + JSONWriter.serialize([
            "results": [["tables": [["rows": [["T[a]": 1, "T[b]": "x"], ["T[a]": 2, "T[b]": "y"], ["T[a]": 3]],
                                     "error": ["code": "RowLimitExceeded", "message": "More than 3 rows in a query result"]]]]],
        ])
        let http = RecordingHTTPClient { _ in UpstreamResponse(status: 200, body: body) }
        let t = tools(http, ScriptedBroker(), config(maxRows: 2))
        let r = try run(t["execute_dax_query"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds), "query": "EVALUATE 'T'"])
        let sc = try XCTUnwrap(r.structuredContent)
        XCTAssertFalse(r.isError)
        XCTAssertEqual(sc["rowCount"]?.intValue, 2)
        XCTAssertEqual(sc["columns"], ["T[a]", "T[b]"])
        XCTAssertEqual(sc["truncated"]?.boolValue, true)
        let reasons = sc["truncationReasons"]?.arrayValue?.compactMap(\.stringValue) ?? []
        XCTAssertTrue(reasons.contains { $0.contains("first 2 of 3 rows") }, "\(reasons)")
        XCTAssertTrue(reasons.contains { $0.contains("More than 3 rows") }, "\(reasons)")
        XCTAssertEqual(sc["errors"]?.arrayValue?.first?["level"]?.stringValue, "table")
        let sent = try JSONParser.parse(http.requests[0].body)
        XCTAssertEqual(sent["queries"]?.arrayValue?.first?["query"]?.stringValue, "EVALUATE 'T'")
        XCTAssertTrue(http.requests[0].idempotent)
        XCTAssertTrue(http.requests[0].url.hasSuffix("/groups/\(Self.wsA)/datasets/\(Self.ds)/executeQueries"))

        for level in ["response", "result"] {
            let errorBody: JSONValue = level == "response"
                ? ["error": ["code": "QueryFailed", "message": "top-level failure"]]
                : ["results": [["error": ["code": "ResultFailed", "message": "result failure"]]]]
            http.answer = { _ in jsonResponse(200, errorBody) }
            XCTAssertThrowsError(try run(t["execute_dax_query"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds), "query": "EVALUATE 'T'"])) {
                XCTAssertTrue("\($0)".contains("\(level): "), "\($0)")
            }
        }
    }

    func testDAXLengthCapAndRowArgument() throws {
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["results": [["tables": [["rows": [["a": 1], ["a": 2]]]]]]]) }
        var c = config(maxRows: 5)
        c.maxDAXChars = 20
        let t = tools(http, ScriptedBroker(), c)
        XCTAssertThrowsError(try run(t["execute_dax_query"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds),
                                                            "query": .string(String(repeating: "x", count: 21))]))
        XCTAssertThrowsError(try run(t["execute_dax_query"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds),
                                                            "query": "EVALUATE {1}", "max_rows": 6]))
        XCTAssertEqual(http.count, 0)
        let r = try run(t["execute_dax_query"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds), "query": "EVALUATE {1}", "max_rows": 1])
        XCTAssertEqual(r.structuredContent?["rowCount"]?.intValue, 1)
    }

    func testDatasetSchemaFromINFOFunctions() throws {
        let http = RecordingHTTPClient { r in
            let q = (try? JSONParser.parse(r.body))?["queries"]?.arrayValue?.first?["query"]?.stringValue ?? ""
            let rows: JSONValue
            if q.contains("TABLES") { rows = [["[ID]": 1, "[Name]": "Sales", "[IsHidden]": false], ["[ID]": 2, "[Name]": "Date", "[IsHidden]": false]] }
            else if q.contains("COLUMNS") { rows = [["[Table]": "Sales", "[Name]": "Amount", "[DataType]": "Decimal"], ["[Table]": "Date", "[Name]": "Year", "[DataType]": "Int64"]] }
            else { rows = [["[Table]": "Sales", "[Name]": "Total", "[Expression]": "SUM(Sales[Amount])"]] }
            return jsonResponse(200, ["results": [["tables": [["rows": rows]]]]])
        }
        let r = try run(tools(http, ScriptedBroker(), config())["get_dataset_schema"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds)])
        let tables = r.structuredContent?["tables"]?.arrayValue ?? []
        XCTAssertEqual(tables.compactMap { $0["name"]?.stringValue }, ["Sales", "Date"])
        XCTAssertEqual(tables[0]["columns"]?.arrayValue?.first?["Name"]?.stringValue, "Amount")
        XCTAssertEqual(tables[0]["measures"]?.arrayValue?.first?["Expression"]?.stringValue, "SUM(Sales[Amount])")
        XCTAssertEqual(tables[1]["measures"]?.arrayValue?.count, 0)
        XCTAssertEqual(http.count, 3)
    }

    // MARK: - Failures

    func testUpstreamFailuresReadClearly() throws {
        let http = RecordingHTTPClient { _ in jsonResponse(200, [:]) }
        let t = tools(http, ScriptedBroker(), config())
        let args: JSONObject = ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds), "query": "EVALUATE {1}"]
        func message(_ r: UpstreamResponse) -> String {
            http.answer = { _ in r }
            do { _ = try run(t["execute_dax_query"], args); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(jsonResponse(401, ["error": ["code": "PowerBINotAuthorizedException"]])).contains("Dataset Execute Queries REST API"))
        XCTAssertTrue(message(jsonResponse(403, [:])).contains("Build permission"))
        XCTAssertTrue(message(jsonResponse(404, ["error": ["code": "PowerBIEntityNotFound"]])).contains("Not found"))
        XCTAssertTrue(message(jsonResponse(429, [:], headers: [("retry-after", "17")])).contains("retry in 17 s"))
        XCTAssertTrue(message(jsonResponse(503, [:])).contains("try again later"))
        let dax = message(jsonResponse(400, ["error": ["code": "DatasetExecuteQueriesError", "pbi.error": ["code": "DatasetExecuteQueriesError",
            "details": [["code": "DetailsMessage", "detail": ["type": 1, "value": "Query (1, 10) The syntax for 'x' is incorrect."]]]]]]))
        XCTAssertTrue(dax.contains("The syntax for 'x' is incorrect"), dax)
        http.answer = { _ in throw UpstreamError.timeout(host: "api.example.test", seconds: 30) }
        XCTAssertThrowsError(try run(t["execute_dax_query"], args)) { XCTAssertTrue("\($0)".contains("did not answer within 30 s")) }
    }

    /// A 2xx answer that is not JSON, is cut short, or lacks the documented shape is a tool
    /// error that says so, for every tool: never an empty list or an empty result.
    func testSuccessBodiesThatAreNotTheDocumentedJSONAreRefused() throws {
        let http = RecordingHTTPClient { _ in UpstreamResponse(status: 200) }
        let t = tools(http, ScriptedBroker(), config())
        let workspace: JSONObject = ["workspace_id": .string(Self.wsA)]
        let dataset: JSONObject = ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds)]
        let query: JSONObject = ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds), "query": "EVALUATE {1}"]
        let calls: [(String, JSONObject)] = [
            ("list_workspaces", [:]), ("list_datasets", workspace), ("list_reports", workspace), ("list_dashboards", workspace),
            ("get_refresh_history", dataset), ("execute_dax_query", query),
            ("get_dataset_schema", dataset),
        ]
        let bodies: [(String, [UInt8])] = [
            ("html", Array("<html><body>Sign in to the proxy</body></html>".utf8)),
            ("truncated", Array(#"{"value":[{"id":"aaaaaaaa-0000-4000-8000-00000000000a","na"#.utf8)),
            ("shapeless", Array(#"{"odata":"nothing here"}"#.utf8)),
            ("items not objects", Array(#"{"value":[1,2]}"#.utf8)),
            ("empty", []),
        ]
        for (kind, body) in bodies {
            http.answer = { _ in UpstreamResponse(status: 200, headers: [("content-type", "application/json")], body: body) }
            for (name, args) in calls {
                XCTAssertThrowsError(try run(t[name], args), "\(name), \(kind) body") { e in
                    XCTAssertTrue("\(e)".contains("Power BI answered 200 with a body that is not"), "\(name), \(kind): \(e)")
                    XCTAssertEqual((e as? ToolError)?.upstreamStatus, 200, "\(name), \(kind)")
                }
            }
        }
        // A DAX answer whose results hold no table, or a table without rows, is not a result either.
        for shape: JSONValue in [["results": []], ["results": [[:] as JSONValue]], ["results": [["tables": [[:] as JSONValue]]]]] {
            http.answer = { _ in jsonResponse(200, shape) }
            XCTAssertThrowsError(try run(t["execute_dax_query"], query)) { e in
                XCTAssertTrue("\(e)".contains("Power BI answered 200 with a body that is not"), "\(shape): \(e)")
            }
        }
        // Starting a refresh: an empty 202 is the documented answer; a garbage body is refused.
        http.answer = { _ in UpstreamResponse(status: 202, body: Array("<html>".utf8)) }
        XCTAssertThrowsError(try run(t["trigger_refresh"], dataset)) { e in
            XCTAssertTrue("\(e)".contains("Power BI answered 202 with a body that is not JSON"), "\(e)")
        }
        http.answer = { _ in UpstreamResponse(status: 202) }
        XCTAssertEqual(try run(t["trigger_refresh"], dataset).structuredContent?["accepted"]?.boolValue, true)
    }

    func testTokenFailuresReadClearly() throws {
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["value": []]) }
        let broker = ScriptedBroker()
        let t = tools(http, broker, config())
        broker.failure = .consentRequired(scopes: ["https://analysis.windows.net/powerbi/api/.default"], detail: "AADSTS65001: not consented")
        XCTAssertThrowsError(try run(t["list_workspaces"], [:])) {
            XCTAssertTrue("\($0)".contains("administrator of your organisation must grant"), "\($0)")
            XCTAssertTrue("\($0)".contains("analysis.windows.net/powerbi/api"))
        }
        broker.failure = .interactionRequired(claims: #"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#, detail: "AADSTS50079")
        XCTAssertThrowsError(try run(t["list_workspaces"], [:])) { XCTAssertTrue($0 is ToolError, "no cp1: a tool error") }
        XCTAssertThrowsError(try run(t["list_workspaces"], [:], caller: caller(capabilities: ["cp1"]))) { e in
            guard let c = e as? ClaimsChallenge else { return XCTFail("\(e)") }
            XCTAssertTrue(c.claims.contains("acrs"))
        }
        XCTAssertEqual(http.count, 0)
    }

    /// Through the whole gateway: the challenge is an HTTP 401 with insufficient_claims and the base64 claims.
    func testClaimsChallengeBecomes401ThroughTheGateway() throws {
        let broker = ScriptedBroker()
        let claims = #"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#
        broker.failure = .interactionRequired(claims: claims, detail: "AADSTS50079")
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["value": []]) }
        let f = try GatewayFixture(tools: PowerBITools.tools(PowerBIClient(config: config(), http: http, broker: broker, store: store)))
        func call(_ capabilities: JSONValue?) throws -> HTTPResponse {
            var extra = JSONObject()
            if let capabilities { extra["xms_cc"] = capabilities }
            let token = try f.minter.mint(tenantId: GatewayFixture.tenant, objectId: Self.user, audience: GatewayFixture.audience,
                                          scopes: ["mcp.tools"], roles: ["MCP.User"], extraClaims: extra)
            return f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "list_workspaces", "arguments": [:]]), token: token)
        }
        let challenged = try call(["cp1"])
        XCTAssertEqual(challenged.status, 401)
        let header = try XCTUnwrap(challenged.header("WWW-Authenticate"))
        XCTAssertTrue(header.contains("error=\"insufficient_claims\""), header)
        XCTAssertTrue(header.contains("claims=\"\(Base64.encode(Array(claims.utf8)))\""), header)
        XCTAssertTrue(header.contains("resource_metadata=\""), header)
        let plain = try call(nil)
        XCTAssertEqual(plain.status, 200)
        XCTAssertEqual(plain.json?["result"]?["isError"]?.boolValue, true)
    }

    // MARK: - Refresh

    func testRefreshHistoryAndTrigger() throws {
        let http = RecordingHTTPClient { r in
            r.method == "POST" ? UpstreamResponse(status: 202, headers: [("requestid", "req-77")])
                : jsonResponse(200, ["value": [["requestId": "r1", "refreshType": "Scheduled", "status": "Completed", "startTime": "2026-11-01T00:00:00Z"]]])
        }
        let t = tools(http, ScriptedBroker(), config())
        let h = try run(t["get_refresh_history"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds), "top": 5])
        XCTAssertEqual(h.structuredContent?["refreshes"]?.arrayValue?.first?["status"]?.stringValue, "Completed")
        XCTAssertTrue(http.requests[0].url.hasSuffix("/refreshes?$top=5"))
        let r = try run(t["trigger_refresh"], ["workspace_id": .string(Self.wsA), "dataset_id": .string(Self.ds), "notify_option": "MailOnFailure"])
        XCTAssertEqual(r.structuredContent?["requestId"]?.stringValue, "req-77")
        XCTAssertFalse(http.requests[1].idempotent, "starting a refresh is never retried")
        XCTAssertEqual(try JSONParser.parse(http.requests[1].body)["notifyOption"]?.stringValue, "MailOnFailure")
        let def = t["trigger_refresh"]!.definition
        XCTAssertEqual(def.permission, "admin")
        XCTAssertFalse(def.annotations.readOnly)
        XCTAssertTrue(t["execute_dax_query"]!.definition.annotations.readOnly)
    }

    // MARK: - Config

    func testConfigSectionsAndClouds() throws {
        func parse(_ extra: [String: JSONValue]) throws -> GatewayConfig {
            var root: JSONObject = ["server": ["public_url": "https://mcp.example.test/mcp"],
                                    "auth": ["mode": "development", "tenant_id": .string(Self.tenant), "client_id": "api://x"]]
            for (k, v) in extra { root[k] = v }
            return try ProcessConfig.parse(root).instances[0]
        }
        let credential: JSONValue = ["client_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "client_secret_env": "PBI_SECRET"]
        let gov = try parse(["credential": credential, "powerbi": ["cloud": "gcc_high", "access_mode": "service_principal", "max_rows": 500]])
        XCTAssertEqual(gov.powerBI?.authority, "https://login.microsoftonline.us")
        XCTAssertEqual(gov.powerBI?.apiBase, "https://api.high.powerbigov.us/v1.0/myorg")
        XCTAssertEqual(gov.powerBI?.scope, "https://high.analysis.usgovcloudapi.net/powerbi/api/.default")
        XCTAssertEqual(gov.powerBI?.accessMode, .servicePrincipal)
        XCTAssertEqual(try parse(["credential": credential, "powerbi": ["cloud": "china"]]).powerBI?.apiBase, "https://api.powerbi.cn/v1.0/myorg")
        let overridden = try parse(["credential": credential, "powerbi": ["api_base": "https://pbi.proxy.test/v1.0/myorg/", "resource": "https://r.test/powerbi/api"]])
        XCTAssertEqual(overridden.powerBI?.apiBase, "https://pbi.proxy.test/v1.0/myorg")
        XCTAssertEqual(overridden.powerBI?.scope, "https://r.test/powerbi/api/.default")
        XCTAssertNil(try parse([:]).powerBI)

        func problems(_ extra: [String: JSONValue]) -> String {
            do { _ = try parse(extra); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(problems(["powerbi": [:] as JSONValue, "credential": credential]).isEmpty)
        XCTAssertTrue(problems(["powerbi": ["cloud": "public"]]).contains("credential: is required by powerbi"))
        XCTAssertTrue(problems(["powerbi": ["cloud": "mars"], "credential": credential]).contains("powerbi.cloud"))
        XCTAssertTrue(problems(["powerbi": ["max_rows": 100_001], "credential": credential]).contains("powerbi.max_rows"))
        XCTAssertTrue(problems(["powerbi": ["acess_mode": "delegated"], "credential": credential]).contains("powerbi.acess_mode: unknown setting"))
        XCTAssertTrue(problems(["powerbi": ["api_base": "http://127.0.0.1:1/v1.0/myorg"], "credential": credential]).contains("powerbi.api_base"))
        XCTAssertTrue(problems(["powerbi": ["api_base": "http://127.0.0.1:1/v1.0/myorg", "allow_insecure_http_for_testing": true], "credential": credential]).isEmpty)
        XCTAssertTrue(problems(["credential": ["client_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc"]]).contains("set exactly one of"))
        XCTAssertTrue(problems(["credential": ["client_id": "x", "client_secret_env": "A"]]).contains("credential.client_id"))
        XCTAssertTrue(problems(["credential": ["client_id": "cccccccc-cccc-4ccc-8ccc-cccccccccccc", "client_secret_env": "A", "certificate_file": "/k.pem"]]).contains("exactly one"))

        XCTAssertEqual(try PowerBITenantSettings.parse(["access_mode": "service_principal", "workspaces": .array([.string(Self.wsA.uppercased())])], path: "tenants.x.powerbi"),
                       PowerBITenantSettings(accessMode: .servicePrincipal, workspaces: [Self.wsA]))
        XCTAssertThrowsError(try PowerBITenantSettings.parse(["workspaces": ["nope"]], path: "tenants.x.powerbi")) {
            XCTAssertTrue("\($0)".contains("tenants.x.powerbi.workspaces"))
        }
        XCTAssertThrowsError(try PowerBITenantSettings.parse(["mode": "x"], path: "tenants.x.powerbi"))
    }
}
