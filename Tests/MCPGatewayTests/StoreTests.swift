import GatewayStore
import GatewaySupport
import Foundation
@testable import GatewayStore
import MCPJSON
import XCTest
@testable import MCPGateway

/// The shared store: schema, file mode, blocks and rate limits, with two
/// connections standing in for two worker processes.
final class StoreTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "mcp-fcgi-store-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testFileIsOwnerOnlyWALAndMigrated() throws {
        let path = dir + "/s.db"
        _ = try SQLiteStore(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        let again = try SQLiteStore(path: path)  // a second open finds the schema in place
        let version = try again.db.transaction(write: false) { try $0.query("PRAGMA user_version").first?.first?.int }
        XCTAssertEqual(version, Int64(SQLiteStore.migrations.count))
        let journal = try again.db.transaction(write: false) { try $0.query("PRAGMA journal_mode").first?.first?.text }
        XCTAssertEqual(journal, "wal")
    }

    func testNewerSchemaIsRefused() throws {
        let path = dir + "/s.db"
        let s = try SQLiteStore(path: path)
        try s.db.execute("PRAGMA user_version = 99")
        XCTAssertThrowsError(try SQLiteStore(path: path))
    }

}

/// Blocks and limits through the whole request path.
final class AdmissionTests: XCTestCase {
    func testBlockedPrincipalsAreRefusedAtOnce() throws {
        let f = try GatewayFixture()
        let token = try f.token()
        let ping = GatewayFixture.legacyBody("ping")
        XCTAssertEqual(f.post(ping, token: token).status, 200)
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)  // as `mcp-fcgi block` would
        try store.addBlock(Block(kind: .user, id: "11111111-1111-4111-8111-111111111111", until: nil, reason: nil))
        let r = f.post(ping, token: token)
        XCTAssertEqual(r.status, 403)
        XCTAssertEqual(r.errorCode, RPCErrorCode.forbidden)
        XCTAssertTrue(try store.removeBlock(kind: .user, id: "11111111-1111-4111-8111-111111111111"))
        try store.addBlock(Block(kind: .tenant, id: GatewayFixture.tenant, until: Int64(Date().timeIntervalSince1970) + 60, reason: nil))
        XCTAssertEqual(f.post(ping, token: token).status, 403)
        try store.addBlock(Block(kind: .tenant, id: GatewayFixture.tenant, until: Int64(Date().timeIntervalSince1970) - 1, reason: nil))
        XCTAssertEqual(f.post(ping, token: token).status, 200)
    }

    func testBlocksApplyToMeAsWell() throws {
        let f = try GatewayFixture()
        let token = try f.token()
        func me() -> HTTPResponse {
            f.gateway.respond(to: HTTPRequest(method: "GET", path: "/me", headers: HTTPHeaders(["authorization": "Bearer \(token)"])))
        }
        XCTAssertEqual(me().status, 200)
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)  // as `mcp-fcgi block` would
        try store.addBlock(Block(kind: .user, id: "11111111-1111-4111-8111-111111111111", until: nil, reason: nil))
        let r = me()
        XCTAssertEqual(r.status, 403)
        XCTAssertEqual(r.json?["error"], "blocked")
        XCTAssertEqual(r.json?["error_description"], "Access has been blocked by the operator of this server (user)")
        XCTAssertNil(r.json?["oid"], "nothing about the caller is shown")
        XCTAssertTrue(try store.removeBlock(kind: .user, id: "11111111-1111-4111-8111-111111111111"))
        XCTAssertEqual(me().status, 200)
    }

    func testRateLimitAnswers429WithRetryAfter() throws {
        let f = try GatewayFixture(extra: ["rate_limits": ["user_per_minute": 6, "user_burst": 2]])
        let token = try f.token()
        let ping = GatewayFixture.legacyBody("ping")
        XCTAssertEqual(f.post(ping, token: token).status, 200)
        XCTAssertEqual(f.post(ping, token: token).status, 200)
        let r = f.post(ping, token: token)
        XCTAssertEqual(r.status, 429)
        XCTAssertEqual(r.header("Retry-After").flatMap(Int.init).map { (1...10).contains($0) }, true)
        XCTAssertEqual(r.errorCode, RPCErrorCode.rateLimited)
        // Another user of the same tenant has a bucket of their own.
        let other = try f.minter.mint(tenantId: GatewayFixture.tenant, objectId: "22222222-2222-4222-8222-222222222222",
                                      audience: GatewayFixture.audience, scopes: ["mcp.tools"])
        XCTAssertEqual(f.post(ping, token: other).status, 200)
    }

    func testTenantLimitCoversAllItsUsers() throws {
        let f = try GatewayFixture(extra: ["rate_limits": ["tenant_per_minute": 1, "tenant_burst": 1]])
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: try f.token()).status, 200)
        let other = try f.minter.mint(tenantId: GatewayFixture.tenant, objectId: "22222222-2222-4222-8222-222222222222",
                                      audience: GatewayFixture.audience, scopes: ["mcp.tools"])
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: other).status, 429)
    }
}
