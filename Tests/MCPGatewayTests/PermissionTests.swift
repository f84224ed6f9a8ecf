import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// Roles and scopes become permissions; tools ask for one; listings and calls follow.
final class PermissionTests: XCTestCase {
    struct EchoTool: Tool {
        let name: String
        let permission: String
        var definition: ToolDefinition {
            ToolDefinition(name: name, description: "test tool needing \(permission)", inputSchema: ToolDefinition.noArguments,
                           annotations: .readOnlyLocal, permission: permission)
        }
        func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult { .structured(["ok": true]) }
    }

    var f: GatewayFixture!

    override func setUpWithError() throws {
        f = try GatewayFixture(extra: ["authorization": ["scopes": ["mcp.admin": ["admin"], "mcp.tools": ["user"]]]],
                               auth: ["accept_app_only_tokens": true],
                               tools: [EchoTool(name: "user_tool", permission: "user"), EchoTool(name: "admin_tool", permission: "admin")])
    }

    func names(_ token: String) -> [String] {
        let r = f.post(GatewayFixture.modernBody("tools/list"), headers: GatewayFixture.modernHeaders("tools/list"), token: token)
        return r.json?["result"]?["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
    }

    func call(_ tool: String, _ token: String) -> HTTPResponse {
        f.post(GatewayFixture.modernBody("tools/call", params: ["name": .string(tool)]),
               headers: GatewayFixture.modernHeaders("tools/call", name: tool), token: token)
    }

    func testListingsShowOnlyWhatTheCallerMayCall() throws {
        XCTAssertEqual(names(try f.token(scopes: ["mcp.tools"])), ["whoami", "server_info", "user_tool"])
        XCTAssertEqual(names(try f.token(scopes: ["mcp.tools", "mcp.admin"])),
                       ["whoami", "server_info", "audit_log", "system_status", "user_tool", "admin_tool"])
        XCTAssertEqual(names(try f.token(scopes: ["other"], roles: ["MCP.Admin"])),
                       ["whoami", "server_info", "audit_log", "system_status", "user_tool", "admin_tool"])
        XCTAssertEqual(names(try f.token(scopes: ["other"])), ["whoami", "server_info"])  // deny by default
    }

    func testDelegatedCallerMissingAScopeGetsAStepUpChallenge() throws {
        let r = call("admin_tool", try f.token(scopes: ["mcp.tools"]))
        XCTAssertEqual(r.status, 403)
        let challenge = try XCTUnwrap(r.header("WWW-Authenticate"))
        XCTAssertTrue(challenge.contains(#"error="insufficient_scope""#))
        XCTAssertTrue(challenge.contains(#"scope="mcp.admin""#))
        XCTAssertEqual(call("admin_tool", try f.token(scopes: ["mcp.admin"])).status, 200)
    }

    func testAppOnlyCallerMissingARoleIsToldWhichRole() throws {
        let r = call("admin_tool", try f.token(scopes: [], roles: ["MCP.User"]))
        XCTAssertEqual(r.status, 403)
        XCTAssertNil(r.header("WWW-Authenticate"))
        XCTAssertEqual(r.errorCode, RPCErrorCode.forbidden)
        XCTAssertTrue(r.json?["error"]?["message"]?.stringValue?.contains("MCP.Admin") ?? false)
        XCTAssertEqual(call("user_tool", try f.token(scopes: [], roles: ["MCP.User"])).status, 200)
        XCTAssertEqual(call("admin_tool", try f.token(scopes: [], roles: ["MCP.Admin"])).status, 200)
    }

    func testWhoamiShowsPermissions() throws {
        let r = call("whoami", try f.token(scopes: ["mcp.tools"], roles: ["MCP.Admin"]))
        XCTAssertEqual(r.json?["result"]?["structuredContent"]?["permissions"], ["admin", "user"])
    }

    func testConfigRejectsBadMaps() {
        XCTAssertThrowsError(try GatewayFixture(extra: ["authorization": ["roles": ["MCP.User": "user"]]]))
        XCTAssertThrowsError(try GatewayFixture(extra: ["authorization": ["rolez": [:]]]))
    }
}
