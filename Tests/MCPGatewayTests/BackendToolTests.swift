import GatewayStore
import GatewaySupport
import Foundation
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import MCPGateway

/// Backend tools end to end inside the process: declared tools, each auth mode, per-user
/// sessions in the store, re-establishment, logout, failures, and what never leaks.
final class BackendToolTests: XCTestCase {
    var dir: String!
    var backend: FakeBackendClient!
    var broker: FakeTokenBroker!
    var clock: TestClock<Double>!
    var store: BackendSessionStore!
    var tools: [String: Tool] = [:]
    var logged: [UInt8] = []
    let logLock = NSLock()

    override func setUp() {
        dir = NSTemporaryDirectory() + "mcp-fcgi-backend-tools-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        backend = FakeBackendClient()
        broker = FakeTokenBroker()
        clock = TestClock<Double>(1_900_000_000)
        Log.shared.redirect { [weak self] line in
            guard let self else { return }
            self.logLock.lock(); self.logged += line; self.logLock.unlock()
        }
    }

    override func tearDown() {
        Log.shared.redirect(nil)
        try? FileManager.default.removeItem(atPath: dir)
    }

    static let chatTools: [JSONValue] = [
        ["name": "get_conversations", "description": "Your conversations.", "method": "GET", "path": "/api/conversations", "route": "web"],
        ["name": "get_user_info", "description": "Who the backend thinks you are.", "method": "GET", "path": "/api/user_info", "route": "web"],
        ["name": "list_items", "description": "Items.", "method": "GET", "path": "/v1/items", "route": "api"],
        ["name": "get_message", "description": "A message.", "method": "GET", "path": "/api/conversations/{conversation_id}/messages",
         "input_schema": ["type": "object", "properties": ["conversation_id": ["type": "string"], "limit": ["type": "integer", "maximum": 50]],
                          "required": ["conversation_id"]],
         "query": ["limit"], "route": "web", "max_response_bytes": 1024],
        ["name": "add_item", "description": "Adds an item.", "method": "POST", "path": "/v1/items", "route": "api",
         "input_schema": ["type": "object", "properties": ["title": ["type": "string"]], "required": ["title"]], "body": ["title"]],
    ]

    /// Builds the tools for one backend named "chat" (extra settings merged in).
    func build(_ extra: JSONObject = JSONObject(), tools spec: [JSONValue] = chatTools, environment: [String: String] = [:]) throws {
        var b = JSONObject(pairs: [("base_url", "https://chat.example.test"), ("auth_mode", "hybrid"), ("scope", "api://chat/.default"),
                                   ("permission", "chat"), ("session_check_seconds", 5), ("user_info_id_field", "user_id"),
                                   ("tools", .array(spec))])
        for (k, v) in extra { b[k] = v }
        var root = BackendConfigTests.root(["chat": .object(b)])
        root["state_dir"] = .string(dir)
        let config = try ProcessConfig.parse(root).instances[0]
        store = try SQLiteStore(path: config.resolvedStorePath)
        let made = try BackendTools.make(config: config, store: store, broker: broker, environment: environment,
                                         clock: { [clock] in clock!.now }, makeHTTPClient: { [backend] _ in backend! })
        tools = Dictionary(uniqueKeysWithValues: made.map { ($0.definition.name, $0) })
    }

    func call(_ name: String, _ caller: Caller, _ arguments: JSONObject = JSONObject()) throws -> ToolResult {
        let tool = try XCTUnwrap(tools[name], "no tool \(name)")
        if let problem = SchemaValidator.validate(.object(arguments), against: tool.definition.inputSchema) { throw ToolError(problem) }
        return try tool.call(arguments: arguments, context: Callers.context(caller))
    }

    func failure(_ name: String, _ caller: Caller, _ arguments: JSONObject = JSONObject()) -> String {
        do {
            let r = try call(name, caller, arguments)
            return "no error: \(r.structuredContent.map { JSONWriter.string($0) } ?? "")"
        } catch {
            return "\(error)"
        }
    }

    let alice = Callers.make(Callers.alice)
    let bob = Callers.make(Callers.bob)

    // MARK: - sessions

    func testFirstCallSignsInAsTheCallerAndLaterCallsReuseTheSession() throws {
        try build()
        let r = try call("get_conversations", alice)
        XCTAssertEqual(r.structuredContent?["user"], .string(Callers.alice))
        XCTAssertEqual(r.upstreamStatus, 200, "the audit trail gets the backend's status")
        XCTAssertEqual(backend.paths(), ["POST /api/login", "GET /api/user_info", "GET /api/conversations"])
        let login = try XCTUnwrap(backend.requests.first)
        XCTAssertEqual(login.headers.first { $0.0 == "Authorization" }?.1.hasPrefix("Bearer obo:api://chat/.default:"), true)
        XCTAssertFalse(backend.requests.contains { $0.headers.contains { $0.1.contains("incoming-token") } }, "the caller's own token never goes upstream")
        guard case .onBehalfOf(let assertion, let userKey) = try XCTUnwrap(broker.requests.first).grant else { return XCTFail() }
        XCTAssertEqual(assertion, "incoming-token-of-\(Callers.alice)")
        XCTAssertEqual(userKey, "\(Callers.tenant)/\(Callers.alice)")

        backend.clear()
        clock.advance(2)
        _ = try call("get_conversations", alice)
        XCTAssertEqual(backend.paths(), ["GET /api/conversations"], "checked 2 s ago: no new check within session_check_seconds")
        backend.clear()
        clock.advance(10)
        _ = try call("get_conversations", alice)
        XCTAssertEqual(backend.paths(), ["GET /api/user_info", "GET /api/conversations"], "older than 5 s: checked first")
        backend.clear()
        _ = try call("get_conversations", alice)
        XCTAssertEqual(backend.paths(), ["GET /api/conversations"], "the check is remembered in the store")
    }

    func testTwoUsersAtOnceNeverSeeEachOthersData() throws {
        try build()
        let results = UnsafeMutableBufferPointer<String?>.allocate(capacity: 40)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let caller = i % 2 == 0 ? alice : bob
            results[i] = (try? call("get_conversations", caller))?.structuredContent?["user"]?.stringValue
        }
        for i in 0..<40 { XCTAssertEqual(results[i], i % 2 == 0 ? Callers.alice : Callers.bob, "call \(i)") }
        XCTAssertEqual(backend.paths().filter { $0 == "POST /api/login" }.count, 2, "one sign-in per user, not per call")
        XCTAssertNotEqual(try store.backendSession(try key(alice))?.sealed, try store.backendSession(try key(bob))?.sealed)
    }

    func key(_ c: Caller) throws -> BackendSessionKey {
        BackendSessionKey(instance: c.instance, tenant: try XCTUnwrap(c.tenantId), user: try XCTUnwrap(c.principal?.objectId), backend: "chat")
    }

    func testSessionsAreSharedThroughTheStoreAcrossProcesses() throws {
        try build()
        _ = try call("get_conversations", alice)
        let firstProcess = tools
        try build()   // a second "process": its own connectors and store connection, the same files
        XCTAssertEqual(firstProcess.count, tools.count)
        backend.clear()
        _ = try call("get_conversations", alice)
        XCTAssertEqual(backend.paths(), ["GET /api/conversations"], "the session made by the first process is used")
    }

    func testARejectedSessionIsReestablishedOnceAndOnlyOnce() throws {
        try build()
        _ = try call("get_conversations", alice)
        backend.expireAllSessions()     // the backend forgot every session
        backend.clear()
        let r = try call("get_conversations", alice)
        XCTAssertEqual(r.structuredContent?["user"], .string(Callers.alice))
        XCTAssertEqual(backend.paths(), ["GET /api/conversations", "POST /api/login", "GET /api/user_info", "GET /api/conversations"])

        // A backend that refuses even the fresh session: one retry, then a clear error, no loop.
        backend.clear()
        backend.answer = (401, #"{"error":"nope"}"#)
        clock.advance(1)
        backend.expireAllSessions()
        let message = failure("get_conversations", alice)
        XCTAssertTrue(message.contains("refused your credentials while running get_conversations (401): nope"), message)
        XCTAssertEqual(backend.paths(), ["GET /api/conversations", "POST /api/login", "GET /api/user_info", "GET /api/conversations"])
    }

    func testAnExpiredSessionIsReplacedBeforeUse() throws {
        try build()
        backend.sessionMaxAge = 30
        _ = try call("get_conversations", alice)
        backend.clear()
        clock.advance(31)
        _ = try call("get_conversations", alice)
        XCTAssertEqual(backend.paths(), ["POST /api/login", "GET /api/user_info", "GET /api/conversations"],
                       "past Max-Age the old cookie is not even tried")
    }

    func testACheckThatFindsTheSessionGoneSignsInAgain() throws {
        try build()
        _ = try call("get_conversations", alice)
        backend.expireAllSessions()
        backend.clear()
        clock.advance(6)
        _ = try call("get_conversations", alice)
        XCTAssertEqual(backend.paths(), ["GET /api/user_info", "POST /api/login", "GET /api/user_info", "GET /api/conversations"])
    }

    func testRotatedCookiesReplaceTheStoredOnes() throws {
        try build()
        _ = try call("get_conversations", alice)
        backend.rotateCookieOnUserInfo = true
        clock.advance(6)
        _ = try call("get_conversations", alice)   // the check rotates the cookie; the old one is gone at the backend
        backend.rotateCookieOnUserInfo = false
        backend.clear()
        _ = try call("get_conversations", alice)
        XCTAssertEqual(backend.paths(), ["GET /api/conversations"], "the rotated cookie was kept")
    }

    func testASessionThatIsSomeoneElsesIsRefused() throws {
        try build()
        backend.userInfoOverride = Callers.bob
        let message = failure("get_conversations", alice)
        XCTAssertTrue(message.contains("reported a different user"), message)
        XCTAssertNil(try store.backendSession(try key(alice)), "nothing stored")
    }

    /// A session check answered with something that is not JSON cannot confirm anyone, and says so.
    func testASessionCheckThatIsNotJSONIsRefused() throws {
        try build()
        backend.userInfoOverride = #"x"<html>"#
        let message = failure("get_conversations", alice)
        XCTAssertTrue(message.contains("answered the session check with a body that is not JSON"), message)
        XCTAssertNil(try store.backendSession(try key(alice)), "nothing stored")
    }

    /// A text tool's answer must be UTF-8 text: other bytes are refused, not shown with replacement characters.
    func testATextAnswerThatIsNotUTF8IsRefused() throws {
        try build(["auth_mode": "api-key", "scope": nil, "user_info_id_field": nil, "session_check_seconds": nil, "api_key_env": "CHAT_KEY"],
                  tools: [["name": "read_note", "description": "A note.", "method": "GET", "path": "/notes/today", "response": "text"]],
                  environment: ["CHAT_KEY": "k-123"])
        backend.answerBytes = Array("caf\u{e9} ok".utf8)
        XCTAssertEqual(try call("read_note", alice).content.first?["text"]?.stringValue, "caf\u{e9} ok")
        backend.answerBytes = [0x63, 0x61, 0x66, 0xE9, 0xFF, 0x00]
        let message = failure("read_note", alice)
        XCTAssertTrue(message.contains("answered read_note with a body that is not UTF-8 text"), message)
    }

    func testLoginLogoutAndStatus() throws {
        try build()
        XCTAssertEqual(try call("backend_session_status", alice).structuredContent?["session"], "none")
        let login = try call("backend_login", alice, ["backend": "chat"])
        XCTAssertEqual(login.structuredContent?["new"], .bool(true))
        XCTAssertEqual(try call("backend_login", alice).structuredContent?["new"], .bool(false))
        let status = try call("backend_session_status", alice, ["check": true])
        XCTAssertEqual(status.structuredContent?["session"], "active")
        XCTAssertEqual(status.structuredContent?["verified"], .bool(true))
        XCTAssertNotNil(status.structuredContent?["expires_at"]?.stringValue)
        XCTAssertEqual(backend.liveSessions, 1)

        let out = try call("backend_logout", alice)
        XCTAssertEqual(out.structuredContent?["ended"], .bool(true))
        XCTAssertEqual(backend.liveSessions, 0, "the logout endpoint ended it at the backend")
        XCTAssertNil(try store.backendSession(try key(alice)))
        XCTAssertEqual(try call("backend_logout", alice).structuredContent?["ended"], .bool(false))
        XCTAssertEqual(try call("backend_session_status", alice).structuredContent?["session"], "none")
        XCTAssertTrue(failure("backend_login", Callers.make(Callers.alice, permissions: [])).contains("need the permission chat"))
    }

    func testLogoutWhenTheBackendIsDownStillForgetsTheSession() throws {
        try build()
        _ = try call("backend_login", alice)
        backend.down = true
        let out = try call("backend_logout", alice)
        XCTAssertTrue(out.structuredContent?["detail"]?.stringValue?.contains("could not be told") == true)
        XCTAssertNil(try store.backendSession(try key(alice)))
    }

    // MARK: - other modes

    func testHybridSendsTokensToAPIRoutesAndTokenModeToEverything() throws {
        try build()
        let r = try call("list_items", alice)
        XCTAssertEqual(r.structuredContent?["result"]?.arrayValue?.first?["by"], .string(Callers.alice), "an array answer is wrapped")
        XCTAssertEqual(backend.paths(), ["GET /v1/items"], "no session for an api route")
        backend.clear()
        _ = try call("add_item", alice, ["title": "hi"])
        XCTAssertEqual(String(decoding: try XCTUnwrap(backend.requests.first).body, as: UTF8.self), #"{"title":"hi"}"#)

        let message = failure("list_items", Callers.make(Callers.alice, appOnly: true))
        XCTAssertTrue(message.contains("app-only token cannot use it"), message)
        broker.failure = .consentRequired(scopes: ["api://chat/.default"], detail: "AADSTS65001")
        let consent = failure("list_items", bob)
        XCTAssertTrue(consent.contains("An administrator must grant consent for api://chat/.default"), consent)
    }

    func testAPIKeyFromTheEnvironmentOrAFile() throws {
        let spec: [JSONValue] = [["name": "list_items", "description": "Items.", "method": "GET", "path": "/v1/items"]]
        try build(["auth_mode": "api-key", "scope": nil, "user_info_id_field": nil, "session_check_seconds": nil, "api_key_env": "CHAT_KEY"],
                  tools: spec, environment: ["CHAT_KEY": "k-123\n"])
        XCTAssertEqual(try call("list_items", alice).structuredContent?["result"]?.arrayValue?.first?["by"], "service")
        XCTAssertEqual(backend.requests.first?.headers.first { $0.0 == "X-API-Key" }?.1, "k-123")
        XCTAssertNil(tools["backend_login"], "no session tools without a session backend")
        XCTAssertThrowsError(try build(["auth_mode": "api-key", "scope": nil, "user_info_id_field": nil, "session_check_seconds": nil,
                                        "api_key_env": "CHAT_KEY"], tools: spec)) {
            XCTAssertTrue("\($0)".contains("backends.chat.api_key_env: the environment variable CHAT_KEY is not set"), "\($0)")
        }
        let file = dir + "/chat.key"
        try "k-123\n".write(toFile: file, atomically: true, encoding: .utf8)
        try build(["auth_mode": "api-key", "scope": nil, "user_info_id_field": nil, "session_check_seconds": nil,
                   "api_key_file": .string(file)], tools: spec)
        XCTAssertFalse(try call("list_items", alice).isError)
    }

    func testATenantHostGetsTokensOnlyForItsOwnScope() throws {
        try build()
        let own = TenantRecord(id: Callers.tenant, name: "Contoso",
                               backends: ["chat": TenantBackendSettings(baseURL: "https://contoso.chat.example.test",
                                                                        scope: "api://contoso-chat/.default")])
        // The fake backend knows only the shared scope, so it refuses this token: what matters is which one was minted.
        _ = failure("list_items", Callers.make(Callers.alice, record: own))
        XCTAssertEqual(broker.requests.last?.scopes, ["api://contoso-chat/.default"])
        XCTAssertEqual(backend.requests.last?.url, "https://contoso.chat.example.test/v1/items")
        // Built in code without a scope of its own: no token at all, rather than the shared backend's.
        let tokensBefore = broker.requests.count
        backend.clear()
        let borrowed = TenantRecord(id: Callers.tenant, name: "Contoso",
                                    backends: ["chat": TenantBackendSettings(baseURL: "https://contoso.chat.example.test")])
        XCTAssertTrue(failure("list_items", Callers.make(Callers.alice, record: borrowed)).contains("no Entra scope for your organisation's host"))
        XCTAssertEqual(broker.requests.count, tokensBefore)
        XCTAssertEqual(backend.requests.count, 0)
    }

    func testTenantOverridesChangeTheURLAndCanSwitchABackendOff() throws {
        try build()
        let record = TenantRecord(id: Callers.tenant, name: "Contoso",
                                  backends: ["chat": TenantBackendSettings(baseURL: "https://contoso.chat.example.test",
                                                                           scope: "api://chat/.default")])
        _ = try call("list_items", Callers.make(Callers.alice, record: record))
        XCTAssertEqual(backend.requests.last?.url, "https://contoso.chat.example.test/v1/items")
        let off = TenantRecord(id: Callers.tenant, name: "Contoso", backends: ["chat": TenantBackendSettings(enabled: false)])
        XCTAssertTrue(failure("list_items", Callers.make(Callers.alice, record: off)).contains("not enabled for your organisation"))
        // A session made for one URL does not travel to another.
        _ = try call("get_conversations", alice)
        backend.clear()
        _ = try call("get_conversations", Callers.make(Callers.alice, record: record))
        XCTAssertEqual(backend.paths().first, "POST /api/login")
    }

    // MARK: - arguments, answers, failures

    func testArgumentsGoIntoTheirSegmentAndQuery() throws {
        try build()
        backend.answer = (200, #"{"ok":true}"#)
        XCTAssertTrue(failure("get_message", alice, ["conversation_id": "../admin"]).contains("must not contain /"))
        XCTAssertTrue(failure("get_message", alice, ["conversation_id": ".."]).contains("must not be . or .."))
        backend.clear()
        backend.answer = (200, #"{"ok":true}"#)
        _ = try call("get_message", alice, ["conversation_id": "c 1?x=y", "limit": 5])
        XCTAssertEqual(backend.requests.last?.url, "https://chat.example.test/api/conversations/c%201%3Fx%3Dy/messages?limit=5")
        XCTAssertTrue(failure("get_message", alice, ["conversation_id": "c", "host": "evil.test"]).contains("not a known argument"))
    }

    func testBackendFailuresBecomeClearToolErrors() throws {
        try build()
        backend.answer = (403, #"{"message":"You are not a member of this workspace"}"#)
        XCTAssertThrowsError(try call("get_conversations", alice)) { XCTAssertEqual(($0 as? ToolError)?.upstreamStatus, 403) }
        XCTAssertTrue(failure("get_conversations", alice).contains("denied access while running get_conversations (403): You are not a member of this workspace"))
        backend.answer = (502, "<html>bad gateway</html>")
        XCTAssertTrue(failure("get_conversations", alice).contains("failed while running get_conversations (502)"))
        backend.answer = (200, "<html>not json</html>")
        XCTAssertTrue(failure("get_conversations", alice).contains("with something that is not JSON"))
        backend.answer = (200, "{\"big\":\"" + String(repeating: "x", count: 2000) + "\"}")
        XCTAssertTrue(failure("get_message", alice, ["conversation_id": "c"]).contains("larger than 1024 bytes"))
        backend.answer = (429, "{}")
        XCTAssertTrue(failure("get_conversations", alice).contains("limiting requests (429)"))
        backend.down = true
        XCTAssertEqual(failure("get_conversations", alice),
                       "The backend chat could not be reached: cannot connect to backend.test: connection refused.")
        backend.down = false
        backend.loginStatus = 403
        backend.expireAllSessions()
        clock.advance(100)
        XCTAssertTrue(failure("get_conversations", bob).contains("denied access while signing you in (403): login refused"))
        backend.loginStatus = 200
        backend.setCookieOnLogin = false
        XCTAssertTrue(failure("get_conversations", bob).contains("set no session cookie"))
    }

    func testNoCookieOrTokenReachesTheStoreTheLogsOrResults() throws {
        try build()
        var shown = ""
        for c in [alice, bob] {
            for name in ["get_conversations", "backend_login", "backend_session_status", "list_items", "get_user_info"] {
                shown += JSONWriter.string(try call(name, c).json)
            }
        }
        backend.expireAllSessions()
        shown += JSONWriter.string(try call("get_conversations", alice).json)
        shown += JSONWriter.string(try call("backend_logout", alice).json)
        let cookies = backend.requests.flatMap { $0.headers }.filter { $0.0 == "Cookie" }.map { $0.1 }
            .flatMap { $0.split(separator: ";") }.map { String($0.split(separator: "=").last ?? "") }
        let tokens = backend.requests.flatMap { $0.headers }.filter { $0.0 == "Authorization" }.map { String($0.1.dropFirst(7)) }
        XCTAssertGreaterThan(cookies.count, 3)
        XCTAssertGreaterThan(tokens.count, 1)
        logLock.lock()
        let logText = String(decoding: logged, as: UTF8.self)
        logLock.unlock()
        XCTAssertTrue(logText.contains("backend session established"))
        let database = try [String(), "-wal"].map { try Data(contentsOf: URL(fileURLWithPath: dir + "/mcp-fcgi.db" + $0)) }
            .map { String(decoding: $0, as: UTF8.self) }.joined()
        for secret in Set(cookies + tokens + ["incoming-token-of-\(Callers.alice)"]) {
            XCTAssertFalse(logText.contains(secret), "a secret in the log")
            XCTAssertFalse(database.contains(secret), "a secret in the store file")
            XCTAssertFalse(shown.contains(secret), "a secret in a tool result")
        }
    }

    func testToolDefinitionsFollowTheDeclaration() throws {
        try build()
        let d = try XCTUnwrap(tools["get_message"]).definition
        XCTAssertEqual(d.permission, "chat")
        XCTAssertTrue(d.annotations.readOnly)
        XCTAssertEqual(d.inputSchema["additionalProperties"], .bool(false))
        let add = try XCTUnwrap(tools["add_item"]).definition
        XCTAssertFalse(add.annotations.readOnly)
        XCTAssertEqual(tools["backend_session_status"]?.definition.inputSchema["properties"]?["backend"]?["enum"], ["chat"])
        let registry = ToolRegistry()
        for t in tools.values { XCTAssertNoThrow(try registry.register(t)) }
    }
}
