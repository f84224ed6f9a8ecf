import EntraAuth
import Foundation
import GatewayCrypto
import GatewayStore
import MCPJSON
import XCTest
@testable import MCPGateway

/// Every MCP request leaves one record, written before the answer; none holds a token.
final class AuditTests: XCTestCase {
    func records(_ f: GatewayFixture, tenant: String? = nil) throws -> [AuditRecord] {
        // As `mcp-fcgi audit tail` reads it, in another process: journal and store as one.
        try InstanceBuilder.openStores(for: f.instance.config, durable: true).audit.audit(since: 0, tenant: tenant, limit: 1000)
    }

    func testOneRecordPerRequestWithDecisionAndReason() throws {
        let f = try GatewayFixture()
        let token = try f.token()
        _ = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]]), token: token)
        _ = f.post(GatewayFixture.legacyBody("ping"))                                      // no token
        _ = f.post(raw: Array("{".utf8), token: token)                                     // parse error
        _ = f.post(GatewayFixture.legacyBody("nope/method"), token: token)                 // JSON-RPC error
        let r = try records(f)
        XCTAssertEqual(r.count, 4)
        XCTAssertEqual(r[0].decision, "allowed")
        XCTAssertEqual(r[0].tool, "whoami")
        XCTAssertEqual(r[0].tenant, GatewayFixture.tenant)
        XCTAssertEqual(r[0].user, "11111111-1111-4111-8111-111111111111")
        XCTAssertEqual(r[0].httpStatus, 200)
        XCTAssertEqual(r[0].argumentsDigest, SHA256Digest(Array("{}".utf8)).hex)
        XCTAssertNil(r[0].arguments)
        XCTAssertEqual(r[1].decision, "denied")
        XCTAssertEqual(r[1].reason, "missing_token")
        XCTAssertEqual(r[1].httpStatus, 401)
        XCTAssertNil(r[1].tenant)
        XCTAssertEqual(r[2].reason, "transport")
        XCTAssertEqual(r[2].httpStatus, 400)
        XCTAssertEqual(r[3].reason, "error -32601")
        XCTAssertTrue(r.allSatisfy { $0.latencyMilliseconds >= 0 && !$0.requestId.isEmpty })
        let everything = r.map { JSONWriter.string($0.json) }.joined()
        XCTAssertFalse(everything.contains(token))
        XCTAssertFalse(everything.contains(String(token.prefix(40))))
    }

    func testArgumentValuesOnlyWhenConfigured() throws {
        let f = try GatewayFixture(extra: ["audit": ["include_arguments": true]])
        _ = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "server_info", "arguments": [:]]), token: try f.token())
        XCTAssertEqual(try records(f).first?.arguments, "{}")
    }

    func testRefusalsAreRecorded() throws {
        let f = try GatewayFixture(extra: ["rate_limits": ["user_per_minute": 1, "user_burst": 1]])
        let token = try f.token()
        _ = f.post(GatewayFixture.legacyBody("ping"), token: token)
        _ = f.post(GatewayFixture.legacyBody("ping"), token: token)
        XCTAssertEqual(try records(f).map(\.reason), [nil, "rate limited"])
        XCTAssertEqual(try records(f).last?.httpStatus, 429)
    }

    func testAuditLogToolShowsOnlyTheCallersTenant() throws {
        let f = try GatewayFixture(auth: ["allowed_tenants": [.string(GatewayFixture.otherTenant)]])
        let mine = try f.token(roles: ["MCP.Admin"])
        let theirs = try f.token(roles: ["MCP.Admin"], tenant: GatewayFixture.otherTenant)
        _ = f.post(GatewayFixture.legacyBody("ping"), token: theirs)
        _ = f.post(GatewayFixture.legacyBody("ping"), token: mine)
        let r = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "audit_log", "arguments": ["since_minutes": 5]]), token: mine)
        let result = try XCTUnwrap(r.json?["result"]?["structuredContent"])
        XCTAssertEqual(result["tenant"], .string(GatewayFixture.tenant))
        let tenants = Set(result["records"]?.arrayValue?.compactMap { $0["tenant"]?.stringValue } ?? [])
        XCTAssertEqual(tenants, [GatewayFixture.tenant])
        // Without the admin permission the tool is neither listed nor callable.
        let plain = try f.token()
        let denied = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "audit_log"]), token: plain)
        XCTAssertEqual(denied.status, 403)
    }

    func testLimitKeepsTheNewestRecordsInOrder() throws {
        let f = try GatewayFixture()
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        for i in 1...5 {
            try store.appendAudit(AuditRecord(time: Double(i), requestId: "r\(i)", decision: "allowed", httpStatus: 200, latencyMilliseconds: 1))
        }
        XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 2).map(\.requestId), ["r4", "r5"])
        XCTAssertEqual(try store.audit(since: 2, tenant: nil, limit: 10).map(\.requestId), ["r2", "r3", "r4", "r5"])
    }

    func testRetentionPrunesOldRecords() throws {
        let f = try GatewayFixture()
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        try store.appendAudit(AuditRecord(time: 100, requestId: "old", decision: "allowed", httpStatus: 200, latencyMilliseconds: 1))
        try store.appendAudit(AuditRecord(time: 5000, requestId: "new", decision: "allowed", httpStatus: 200, latencyMilliseconds: 1))
        XCTAssertEqual(try store.pruneAudit(before: 1000), 1)
        XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 10).map(\.requestId), ["new"])
    }
}

/// Tools report the upstream status behind their answer; the trail keeps it, the client never sees it.
final class UpstreamStatusAuditTests: XCTestCase {
    struct UpstreamTool: Tool {
        let definition = ToolDefinition(name: "upstream_tool", description: "Calls an upstream.",
                                        inputSchema: ["type": "object", "properties": ["fail": ["type": "boolean"]]],
                                        annotations: .readOnlyLocal)
        func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
            if arguments["fail"]?.boolValue == true { throw ToolError("The upstream said no", upstreamStatus: 403) }
            var r = ToolResult.structured(["ok": true])
            r.upstreamStatus = 200
            return r
        }
    }

    func testUpstreamStatusIsRecorded() throws {
        let f = try GatewayFixture(tools: [UpstreamTool()])
        let token = try f.token()
        for fail in [false, true] {
            let r = f.post(GatewayFixture.modernBody("tools/call", params: ["name": "upstream_tool", "arguments": ["fail": .bool(fail)]]),
                           headers: GatewayFixture.modernHeaders("tools/call", name: "upstream_tool"), token: token)
            XCTAssertEqual(r.status, 200)
            XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains("upstreamStatus"))
        }
        let trail = try f.instance.stores.audit.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.map(\.upstreamStatus), [200, 403])
        XCTAssertEqual(trail.map(\.reason), [nil, "tool error"])
    }
}
