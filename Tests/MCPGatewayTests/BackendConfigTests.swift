import Foundation
import MCPJSON
import XCTest
@testable import MCPGateway

/// The `backends` section: what a valid declaration becomes, and a precise error for each mistake.
final class BackendConfigTests: XCTestCase {
    static func root(_ backends: JSONValue, authorization: JSONValue? = nil) -> JSONObject {
        JSONObject(pairs: [
            ("server", ["public_url": "https://mcp.example.test/mcp"]),
            ("state_dir", "/tmp/mcp-fcgi-backend-config"),
            ("auth", ["mode": "development", "tenant_id": .string(Callers.tenant), "client_id": "api://x"]),
            ("authorization", authorization ?? ["roles": ["Chat.User": ["chat"], "MCP.Admin": ["admin"]]]),
            ("credential", ["client_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd", "client_secret_env": "MCP_TEST_SECRET"]),
            ("backends", backends),
        ])
    }

    static let chatTool: JSONValue = [
        "name": "get_conversation", "description": "One conversation.",
        "method": "GET", "path": "/api/conversations/{conversation_id}",
        "input_schema": ["type": "object", "properties": ["conversation_id": ["type": "string"], "limit": ["type": "integer"]],
                         "required": ["conversation_id"]],
        "query": ["limit"],
    ]

    static func backend(_ extra: JSONObject = JSONObject(), tools: [JSONValue] = [chatTool]) -> JSONValue {
        var o = JSONObject(pairs: [("base_url", "https://chat.example.test/"), ("auth_mode", "session"),
                                   ("scope", "api://chat/.default"), ("permission", "chat"), ("tools", .array(tools))])
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    func problems(_ backends: JSONValue, authorization: JSONValue? = nil) -> [String] {
        do {
            _ = try ProcessConfig.parse(Self.root(backends, authorization: authorization))
            return []
        } catch let e as ConfigErrors {
            return e.errors.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    func assertProblem(_ backends: JSONValue, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        let found = problems(backends)
        XCTAssertTrue(found.contains { $0.contains(expected) }, "expected \(expected) in \(found)", file: file, line: line)
    }

    func testValidBackendParses() throws {
        let c = try ProcessConfig.parse(Self.root(["chat": Self.backend(["session_check_seconds": 3, "ca_bundle": "/etc/ssl/internal.pem"])])).instances[0]
        let b = try XCTUnwrap(c.backends["chat"])
        XCTAssertEqual(b.baseURL, "https://chat.example.test")
        XCTAssertEqual(b.authMode, .session)
        XCTAssertEqual(b.sessionCheckSeconds, 3)
        XCTAssertEqual(b.caBundle, "/etc/ssl/internal.pem")
        XCTAssertEqual(b.loginPath, "/api/login")
        let t = try XCTUnwrap(b.tools.first)
        XCTAssertEqual(t.path.placeholders, ["conversation_id"])
        XCTAssertEqual(t.permission, "chat")
        XCTAssertEqual(t.inputSchema["additionalProperties"], .bool(false))
    }

    func testEachMistakeIsNamedWithItsPath() {
        var tool = Self.chatTool.objectValue!
        tool["path"] = "/api/conversations/{id}"
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "backends.chat.tools[0].path: argument 'id' is not in input_schema.properties")

        tool = Self.chatTool.objectValue!
        tool["input_schema"] = ["type": "object", "properties": ["conversation_id": ["type": "string"], "limit": ["type": "integer"]]]
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "backends.chat.tools[0].input_schema.required: must list 'conversation_id'")

        tool = Self.chatTool.objectValue!
        tool["query"] = []
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "input_schema.properties.limit: is not sent anywhere")

        tool = Self.chatTool.objectValue!
        tool["method"] = "TRACE"
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "tools[0].method: must be one of")

        tool = Self.chatTool.objectValue!
        tool["body"] = ["limit"]
        tool["query"] = []
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "tools[0].body: a GET request carries no body")

        tool = Self.chatTool.objectValue!
        tool["path"] = "/api/../admin/{conversation_id}"
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "tools[0].path: segment '..'")

        tool = Self.chatTool.objectValue!
        tool["path"] = "/api/x{conversation_id}"
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "tools[0].path: segment 'x{conversation_id}'")

        tool = Self.chatTool.objectValue!
        tool["colour"] = "blue"
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "backends.chat.tools[0].colour: unknown setting")

        tool = Self.chatTool.objectValue!
        tool["name"] = "whoami"
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "'whoami' is a built-in tool")

        tool = Self.chatTool.objectValue!
        tool["input_schema"] = ["type": "object", "properties": ["conversation_id": ["type": "object"], "limit": ["type": "integer"]],
                                "required": ["conversation_id"]]
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "argument 'conversation_id' must have a \"type\" of integer, string")

        tool = Self.chatTool.objectValue!
        tool["input_schema"] = ["type": "object", "properties": ["conversation_id": ["type": "string"], "limit": ["type": "integer"]],
                                "required": ["conversation_id"], "additionalProperties": true]
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "input_schema.additionalProperties: must be false")

        tool = Self.chatTool.objectValue!
        tool["max_response_bytes"] = .integer(1 << 24)
        assertProblem(["chat": Self.backend(tools: [.object(tool)])], "must not exceed the backend's max_response_bytes")
    }

    func testBackendLevelMistakes() {
        assertProblem(["chat": Self.backend(["base_url": "http://chat.example.test"])], "backends.chat.base_url: must be an https URL")
        assertProblem(["chat": Self.backend(["base_url": "https://u:p@chat.example.test"])], "backends.chat.base_url: must be an absolute URL")
        XCTAssertEqual(problems(["chat": Self.backend(["base_url": "http://127.0.0.1:9", "allow_insecure_http_for_testing": true])]), [])
        assertProblem(["chat": Self.backend(["auth_mode": "cookie"])], "backends.chat.auth_mode: must be one of token, session, hybrid, api-key")
        assertProblem(["chat": Self.backend(["scope": nil])], "backends.chat.scope: is required for auth_mode session")
        assertProblem(["chat": Self.backend(["permission": "superuser"])], "no role or scope under authorization grants 'superuser'")
        assertProblem(["chat": Self.backend(["permission": nil])], "backends.chat.permission: is required")
        assertProblem(["chat": Self.backend(["auth_mode": "api-key", "scope": nil])], "auth_mode api-key needs api_key_file or api_key_env")
        assertProblem(["chat": Self.backend(["api_key_env": "K"])], "api_key_env: applies only to auth_mode api-key")
        assertProblem(["chat": Self.backend(["auth_mode": "api-key", "scope": nil, "api_key_env": "K", "api_key_file": "/k"])], "not both")
        assertProblem(["chat": Self.backend(["auth_mode": "api-key", "scope": nil, "api_key_env": "K", "api_key_header": "Cookie"])],
                      "api_key_header: must not be Cookie")
        assertProblem(["chat": Self.backend(["auth_mode": "token", "login_path": "/login"])], "login_path: applies only to auth_mode session or hybrid")
        assertProblem(["chat": Self.backend(["auth_mode": "token", "session_check_seconds": 3])], "session_check_seconds: applies only to auth_mode session or hybrid")
        assertProblem(["chat": Self.backend(["auth_mode": "hybrid"])], "tools[0].route: is required for a hybrid backend")
        assertProblem(["chat": Self.backend(["timeout_seconds": 0])], "backends.chat.timeout_seconds: must be between 1 and 300")
        assertProblem(["Chat!": Self.backend()], "backends.Chat!: backend names are")
        assertProblem(["chat": Self.backend(), "chat2": Self.backend()], "tool name 'get_conversation' is already used by backend")
        assertProblem(["chat": Self.backend(["wat": 1])], "backends.chat.wat: unknown setting")
        var noCredential = Self.root(["chat": Self.backend()])
        noCredential["credential"] = nil
        XCTAssertThrowsError(try ProcessConfig.parse(noCredential)) {
            XCTAssertTrue("\($0)".contains("backends.chat.auth_mode: session needs On-Behalf-Of tokens: configure the server's credential section"), "\($0)")
        }
    }

    func named(_ name: String) -> JSONValue {
        var tool = Self.chatTool.objectValue!
        tool["name"] = .string(name)
        return Self.backend(tools: [.object(tool)])
    }

    func testEveryBuiltInToolNameIsRefused() {
        for name in ["whoami", "server_info", "audit_log", "system_status", "backend_login", "backend_logout", "backend_session_status"] {
            assertProblem(["chat": named(name)], "backends.chat.tools[0].name: '\(name)' is a built-in tool of this server")
        }
    }

    func testPowerBIToolNamesAreRefusedWhenPowerBIIsConfigured() {
        XCTAssertEqual(problems(["chat": named("list_datasets")]), [])
        var root = Self.root(["chat": named("list_datasets")])
        root["powerbi"] = ["access_mode": "delegated"]
        XCTAssertThrowsError(try ProcessConfig.parse(root)) {
            XCTAssertTrue("\($0)".contains("backends.chat.tools[0].name: 'list_datasets' is a Power BI tool of this server (the powerbi section is configured)"), "\($0)")
        }
    }

    /// The names the config check reserves are the names the composition root registers.
    func testReservedNamesAreTheRegisteredBuiltIns() throws {
        let secret = NSTemporaryDirectory() + "mcp-fcgi-secret-" + UUID().uuidString
        XCTAssertTrue(FileManager.default.createFile(atPath: secret, contents: Data("s3cret".utf8), attributes: [.posixPermissions: 0o600]))
        defer { unlink(secret) }
        let root = Self.root(["chat": Self.backend()])
        let fixture = try GatewayFixture(extra: [
            "authorization": try XCTUnwrap(root["authorization"]),
            "credential": ["client_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd", "client_secret_file": .string(secret)],
            "powerbi": ["access_mode": "delegated"],
            "backends": ["chat": Self.backend()],
        ])
        let registered = Set(fixture.instance.registry.all.map(\.definition.name)).subtracting(["get_conversation"])
        XCTAssertEqual(registered, BuiltInTools.reservedNames.union(BuiltInTools.powerBINames))
    }

    func testTenantOverridesAreTypedAndChecked() {
        let backends = ["chat": try! XCTUnwrap(ProcessConfig.parse(Self.root(["chat": Self.backend()])).instances[0].backends["chat"])]
        let (ok, none) = BackendConfig.parseTenantOverrides(["chat": ["base_url": "https://contoso.chat.example.test", "enabled": true,
                                                                      "scope": "api://contoso-chat/.default"]],
                                                            path: "tenants.t.backends", backends: backends)
        XCTAssertEqual(none.count, 0)
        XCTAssertEqual(ok?["chat"]?.baseURL, "https://contoso.chat.example.test")
        XCTAssertEqual(ok?["chat"]?.scope, "api://contoso-chat/.default")
        // A tenant's own host without its own scope would be sent tokens for the shared backend.
        let (_, noScope) = BackendConfig.parseTenantOverrides(["chat": ["base_url": "https://contoso.chat.example.test"]],
                                                              path: "tenants.t.backends", backends: backends)
        XCTAssertEqual(noScope.map(\.description), ["tenants.t.backends.chat.scope: is required with base_url for auth_mode session: the tenant host's own Entra scope (api://<its app id>/.default); the backend's scope would give that host tokens for the shared backend"])
        let (_, errors) = BackendConfig.parseTenantOverrides(["chat": ["base_url": "http://x.test", "colour": 1], "nope": [:]],
                                                             path: "tenants.t.backends", backends: backends)
        let text = errors.map(\.description)
        XCTAssertTrue(text.contains("tenants.t.backends.chat.base_url: must be an https URL (plain http only with allow_insecure_http_for_testing)"), "\(text)")
        XCTAssertTrue(text.contains { $0.hasPrefix("tenants.t.backends.chat.colour: unknown setting") }, "\(text)")
        XCTAssertTrue(text.contains("tenants.t.backends.nope: no backend named 'nope' under backends"), "\(text)")
    }

    func testExampleConfigIsValid() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let c = try ProcessConfig.load(path: repo.appendingPathComponent("examples/simplechat.json").path, environment: [:]).instances[0]
        XCTAssertEqual(Set(c.backends["simplechat"]?.tools.map(\.name) ?? []), ["get_conversations", "get_user_info"])
    }
}

/// Path templates and query strings: one argument, one segment.
final class PathTemplateTests: XCTestCase {
    func testArgumentsStayInTheirSegment() throws {
        let t = try PathTemplate("/api/conversations/{id}/messages")
        XCTAssertEqual(try t.render(["id": "a b?c#d%e"]), "/api/conversations/a%20b%3Fc%23d%25e/messages")
        XCTAssertEqual(try t.render(["id": 42]), "/api/conversations/42/messages")
        XCTAssertEqual(try t.render(["id": "ünï"]), "/api/conversations/%C3%BCn%C3%AF/messages")
        for bad: JSONValue in ["..", ".", "", "a/b", "a\\b", "x\u{0}y", .bool(true)] {
            XCTAssertThrowsError(try t.render(["id": bad]), "\(bad)")
        }
        XCTAssertEqual(try PathTemplate("/api/items/").render([:]), "/api/items/")
        XCTAssertEqual(try PathTemplate("/").render([:]), "/")
        XCTAssertThrowsError(try PathTemplate("api/x"))
        XCTAssertThrowsError(try PathTemplate("/a//b"))
        XCTAssertThrowsError(try PathTemplate("/a?x=1"))
        XCTAssertThrowsError(try PathTemplate("/{a}/{a}"))
        XCTAssertThrowsError(try PathTemplate("/%2e%2e/x"))
    }

    func testQueryStringEncodesNamesAndValues() {
        XCTAssertEqual(QueryString.render(["q", "n", "tags", "missing"], from: ["q": "a&b=c", "n": 3, "tags": ["x y", true]]),
                       "?q=a%26b%3Dc&n=3&tags=x%20y&tags=true")
        XCTAssertEqual(QueryString.render(["q"], from: [:]), "")
    }
}
