import GatewayStore
import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// Opt-in legacy sessions: minted on initialize, bound to the principal, shared by
/// every process through the store, never required.
final class SessionTests: XCTestCase {
    let initialize = GatewayFixture.legacyBody("initialize", params: ["protocolVersion": "2025-11-25", "capabilities": [:],
                                                                     "clientInfo": ["name": "t", "version": "1"]])
    let ping = GatewayFixture.legacyBody("ping")

    func testOffByDefault() throws {
        let f = try GatewayFixture()
        XCTAssertNil(f.post(initialize, token: try f.token()).header("Mcp-Session-Id"))
        XCTAssertEqual(f.gateway.respond(to: HTTPRequest(method: "DELETE", path: "/mcp")).status, 405)
    }

    func testBoundToPrincipalAndEndedByDelete() throws {
        let f = try GatewayFixture(extra: ["sessions": ["enabled": true]])
        let token = try f.token()
        let sid = try XCTUnwrap(f.post(initialize, token: token).header("Mcp-Session-Id"))
        XCTAssertEqual(sid.count, 64)
        XCTAssertEqual(f.post(ping, headers: ["mcp-session-id": sid], token: token).status, 200)
        XCTAssertEqual(f.post(ping, token: token).status, 200)  // never required
        XCTAssertEqual(f.post(ping, headers: ["mcp-session-id": "unknown"], token: token).status, 404)

        let someoneElse = try f.minter.mint(tenantId: GatewayFixture.tenant, objectId: "22222222-2222-4222-8222-222222222222",
                                            audience: GatewayFixture.audience, scopes: ["mcp.tools"])
        XCTAssertEqual(f.post(ping, headers: ["mcp-session-id": sid], token: someoneElse).status, 404)

        // A second gateway on the same state directory (another worker process) knows the session.
        let other = Gateway(instances: [try InstanceBuilder(config: f.instance.config).build()])
        var h = HTTPHeaders(["content-type": "application/json", "mcp-session-id": sid])
        h["authorization"] = "Bearer \(token)"
        XCTAssertEqual(other.respond(to: HTTPRequest(method: "POST", path: "/mcp", headers: h, body: JSONWriter.serialize(ping))).status, 200)

        var del = HTTPHeaders(["mcp-session-id": sid])
        del["authorization"] = "Bearer \(someoneElse)"
        XCTAssertEqual(f.gateway.respond(to: HTTPRequest(method: "DELETE", path: "/mcp", headers: del)).status, 404)
        del["authorization"] = "Bearer \(token)"
        XCTAssertEqual(f.gateway.respond(to: HTTPRequest(method: "DELETE", path: "/mcp", headers: del)).status, 204)
        XCTAssertEqual(f.post(ping, headers: ["mcp-session-id": sid], token: token).status, 404)
        XCTAssertEqual(f.gateway.respond(to: HTTPRequest(method: "DELETE", path: "/mcp")).status, 401)
    }

    func testIdleSessionsExpire() throws {
        let f = try GatewayFixture(extra: ["sessions": ["enabled": true, "idle_minutes": 1]])
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        let now = Date().timeIntervalSince1970
        try store.createSession(id: "s1", principal: "p", now: now - 120)
        XCTAssertFalse(try store.useSession(id: "s1", principal: "p", now: now, idle: 60))
        try store.createSession(id: "s2", principal: "p", now: now - 30)
        XCTAssertTrue(try store.useSession(id: "s2", principal: "p", now: now, idle: 60))
    }

    func testModernRequestsIgnoreSessionIds() throws {
        let f = try GatewayFixture(extra: ["sessions": ["enabled": true]])
        let r = f.post(GatewayFixture.modernBody("tools/list"),
                       headers: GatewayFixture.modernHeaders("tools/list").merging(["mcp-session-id": "whatever"]) { a, _ in a },
                       token: try f.token())
        XCTAssertEqual(r.status, 200)
        XCTAssertNil(r.header("Mcp-Session-Id"))
    }
}
