import Foundation
import GatewayStore
import XCTest
@testable import MCPGateway

/// What every store engine must do, whatever it is: each test opens its handles through
/// `openStore()` (two handles stand in for two worker processes or two hosts). This class
/// runs them on SQLite; `PostgresStoreBehaviourTests` runs the same tests on PostgreSQL.
class StoreBehaviourTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "mcp-fcgi-store-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A handle on the one store this test shares between its handles.
    func openStore() throws -> any GatewayStore { try SQLiteStore(path: dir + "/s.db") }

    func testBlocksSeenByEveryConnectionAndExpire() throws {
        let a = try openStore(), b = try openStore()
        XCTAssertNil(try b.activeBlock(matching: [(.user, "u1")], now: 500))  // b has now cached "no blocks"
        try a.addBlock(Block(kind: .user, id: "u1", until: nil, reason: "test"))
        try a.addBlock(Block(kind: .tenant, id: "t1", until: 1000, reason: nil))
        XCTAssertEqual(try b.activeBlock(matching: [(.user, "u1")], now: 500)?.reason, "test")
        XCTAssertNotNil(try b.activeBlock(matching: [(.user, "x"), (.tenant, "t1")], now: 999))
        XCTAssertNil(try b.activeBlock(matching: [(.tenant, "t1")], now: 1000))
        XCTAssertEqual(try b.blocks(now: 2000).map(\.id), ["u1"])
        XCTAssertTrue(try b.removeBlock(kind: .user, id: "u1"))
        XCTAssertFalse(try b.removeBlock(kind: .user, id: "u1"))
        XCTAssertNil(try a.activeBlock(matching: [(.user, "u1")], now: 500))
    }

    func testTokenBucketIsSharedAcrossConnections() throws {
        let a = try openStore(), b = try openStore()
        // Burst 3, 60/min (one a second): three pass between the two, the fourth waits about a second.
        let k = [RateBucket(key: "k", perMinute: 60, burst: 3)]
        XCTAssertNil(try a.take(k, now: 100))
        XCTAssertNil(try b.take(k, now: 100))
        XCTAssertNil(try a.take(k, now: 100))
        let wait = try XCTUnwrap(try b.take(k, now: 100))
        XCTAssertEqual(wait, 1, accuracy: 0.01)
        XCTAssertNil(try b.take(k, now: 101))
        XCTAssertNil(try a.take([RateBucket(key: "other", perMinute: 60, burst: 3)], now: 101))
        // All or none: a full bucket next to an empty one consumes nothing.
        let both = [RateBucket(key: "fresh", perMinute: 60, burst: 3), RateBucket(key: "k", perMinute: 60, burst: 3)]
        XCTAssertNotNil(try a.take(both, now: 101))
        XCTAssertNil(try a.take([RateBucket(key: "fresh", perMinute: 60, burst: 1)], now: 101))
    }

    func testConcurrentWritersLoseNoCounts() throws {
        let stores = try (0..<4).map { _ in try openStore() }
        let allowed = NSLock()
        var count = 0
        DispatchQueue.concurrentPerform(iterations: 200) { i in
            if (try? stores[i % 4].take([RateBucket(key: "k", perMinute: 0.0001, burst: 50)], now: 10)) == .some(nil) {
                allowed.lock(); count += 1; allowed.unlock()
            }
        }
        XCTAssertEqual(count, 50)
    }

    func testStoreKeepsOneSealedRowPerUserAndBackend() throws {
        let a = try openStore(), b = try openStore()
        let key = BackendSessionKey(instance: "default", tenant: Callers.tenant.uppercased(), user: Callers.alice, backend: "chat")
        XCTAssertNil(try a.backendSession(key))
        try a.saveBackendSession(key, StoredBackendSession(sealed: [1, 2, 3], expiresAt: 2000, checkedAt: 100), now: 100)
        XCTAssertEqual(try b.backendSession(key), StoredBackendSession(sealed: [1, 2, 3], expiresAt: 2000, checkedAt: 100))
        let bobKey = BackendSessionKey(instance: "default", tenant: Callers.tenant, user: Callers.bob, backend: "chat")
        XCTAssertNil(try b.backendSession(bobKey))
        XCTAssertNil(try b.backendSession(BackendSessionKey(instance: "other", tenant: Callers.tenant, user: Callers.alice, backend: "chat")))
        try b.markBackendSessionChecked(key, sealed: [9], at: 150)      // replaced meanwhile: no change
        XCTAssertEqual(try a.backendSession(key)?.checkedAt, 100)
        try b.markBackendSessionChecked(key, sealed: [1, 2, 3], at: 150)
        XCTAssertEqual(try a.backendSession(key)?.checkedAt, 150)
        XCTAssertTrue(try a.deleteBackendSession(key))
        XCTAssertFalse(try b.deleteBackendSession(key))
        // Long-expired rows are swept when another is saved.
        try a.saveBackendSession(key, StoredBackendSession(sealed: [1], expiresAt: 10, checkedAt: 0), now: 10)
        try a.saveBackendSession(bobKey, StoredBackendSession(sealed: [2], expiresAt: nil, checkedAt: 0), now: 200_000)
        XCTAssertNil(try a.backendSession(key))
        XCTAssertNotNil(try a.backendSession(bobKey))
    }

    func testUserAndGroupMappingsPerTenant() throws {
        let t = "72f988bf-86f1-41af-91ab-2d7cd011db47", other = "0b7e9c39-8f15-4a5e-9a57-2f5c2e1f4d11"
        let user = "11111111-1111-4111-8111-111111111111", group = "22222222-2222-4222-8222-222222222222"
        let w1 = "aaaaaaaa-0000-4000-8000-000000000001", w2 = "aaaaaaaa-0000-4000-8000-000000000002"
        let store = try openStore()
        try store.addMappings([
            try WorkspaceMapping(tenant: t, kind: .user, principal: user.uppercased(), workspace: w1),
            try WorkspaceMapping(tenant: t, kind: .group, principal: group, workspace: w2),
            try WorkspaceMapping(tenant: other, kind: .user, principal: user, workspace: w2),
        ])
        XCTAssertEqual(try store.workspaces(tenant: t, user: user, groups: []), [w1])
        XCTAssertEqual(try store.workspaces(tenant: t, user: user, groups: [group.uppercased()]), [w1, w2])
        XCTAssertEqual(try store.workspaces(tenant: other, user: user, groups: [group]), [w2])
        XCTAssertEqual(try store.mappings(tenant: t).count, 2)
        XCTAssertTrue(try store.removeMapping(try WorkspaceMapping(tenant: t, kind: .group, principal: group, workspace: w2)))
        XCTAssertEqual(try store.workspaces(tenant: t, user: user, groups: [group]), [w1])
        XCTAssertThrowsError(try WorkspaceMapping(tenant: t, kind: .user, principal: "bob", workspace: w1))
    }

    func testLegacySessionsAreBoundToTheirPrincipalAndIdleOut() throws {
        let a = try openStore(), b = try openStore()
        try a.createSession(id: "s1", principal: "p1", now: 1000)
        XCTAssertFalse(try b.useSession(id: "s1", principal: "p2", now: 1001, idle: 60), "another principal's session is not found")
        XCTAssertTrue(try b.useSession(id: "s1", principal: "p1", now: 1050, idle: 60))
        XCTAssertTrue(try a.useSession(id: "s1", principal: "p1", now: 1100, idle: 60), "use keeps it alive")
        XCTAssertFalse(try a.useSession(id: "s1", principal: "p1", now: 1161, idle: 60), "idle past the limit")
        try a.createSession(id: "s2", principal: "p1", now: 2000)
        XCTAssertFalse(try b.endSession(id: "s2", principal: "p2"))
        XCTAssertTrue(try b.endSession(id: "s2", principal: "p1"))
        XCTAssertFalse(try a.useSession(id: "s2", principal: "p1", now: 2001, idle: 60))
    }

    static func record(_ id: String, time: Double, tenant: String? = "t1", completed: Bool = true, status: Int = 200) -> AuditRecord {
        AuditRecord(time: time, requestId: id, instance: "default", tenant: tenant, user: "u1", clientApp: "app", method: "tools/call",
                    tool: "ping", argumentsDigest: String(repeating: "a", count: 64), arguments: "{\"x\":\"\u{e4}\"}",
                    decision: "allowed", reason: nil, httpStatus: status, upstreamStatus: nil, latencyMilliseconds: 1.25,
                    completed: completed)
    }

    func testAuditKeepsTheNewestInOrderCompletesBegunRecordsAndPrunes() throws {
        let a = try openStore(), b = try openStore()
        for i in 0..<5 { try a.appendAudit(Self.record("r\(i)", time: Double(1000 + i), tenant: i % 2 == 0 ? "t1" : "t2")) }
        XCTAssertEqual(try b.audit(since: 0, tenant: nil, limit: 3).map(\.requestId), ["r2", "r3", "r4"])
        XCTAssertEqual(try b.audit(since: 1001, tenant: "t1", limit: 10).map(\.requestId), ["r2", "r4"])
        XCTAssertEqual(try b.audit(since: 0, tenant: nil, limit: 1).first, Self.record("r4", time: 1004))
        let begun = try a.beginAudit(Self.record("call", time: 2000, status: 0))
        XCTAssertEqual(try b.audit(since: 2000, tenant: nil, limit: 1).first?.completed, false)
        try a.completeAudit(begun, with: Self.record("call", time: 2000, status: 502))
        XCTAssertEqual(try b.audit(since: 2000, tenant: nil, limit: 1).first, Self.record("call", time: 2000, status: 502))
        XCTAssertThrowsError(try a.completeAudit(begun, with: Self.record("call", time: 2000)), "completed once only")
        XCTAssertEqual(try b.pruneAudit(before: 1002), 2)
        XCTAssertEqual(try a.audit(since: 0, tenant: nil, limit: 100).map(\.requestId), ["r2", "r3", "r4", "call"])
    }

    func testSampledAuditKeepsOnlyWhileTheSampleHasTokens() throws {
        let a = try openStore(), b = try openStore()
        let sample = RateBucket(key: "audit-sample", perMinute: 60, burst: 2)
        XCTAssertTrue(try a.appendSampledAudit(Self.record("s1", time: 100), sample: sample))
        XCTAssertTrue(try b.appendSampledAudit(Self.record("s2", time: 100), sample: sample))
        XCTAssertFalse(try a.appendSampledAudit(Self.record("s3", time: 100), sample: sample))
        XCTAssertTrue(try b.appendSampledAudit(Self.record("s4", time: 101), sample: sample))
        XCTAssertEqual(try a.audit(since: 0, tenant: nil, limit: 10).map(\.requestId), ["s1", "s2", "s4"])
    }

    func testHealthReadsAndProbesWrites() throws {
        let s = try openStore()
        XCTAssertGreaterThan(try s.health().bytes, 0)
        XCTAssertNoThrow(try s.probeWrite())
    }

    /// The API keys and opaque-token verdicts of the providers, which every engine keeps too.
    func openProviderStore() throws -> any APIKeyStore & IntrospectionCache {
        try XCTUnwrap(try openStore() as? any APIKeyStore & IntrospectionCache, "this engine keeps no API keys or introspections")
    }

    func testAPIKeysRoundTripNewestFirstAndARevocationIsSeenByEveryHandle() throws {
        let a = try openProviderStore(), b = try openProviderStore()
        let old = APIKeyRecord(id: "k1", name: "nightly export", tenant: Callers.tenant.uppercased(), roles: ["MCP.User", "MCP.Admin"],
                               hmac: String(repeating: "ab", count: 32), created: 100, expires: 5000)
        let new = APIKeyRecord(id: "k2", name: "no expiry", tenant: Callers.tenant, roles: [], hmac: String(repeating: "cd", count: 32),
                               created: 200, expires: nil)
        try a.addAPIKey(old)
        try a.addAPIKey(new)
        XCTAssertThrowsError(try b.addAPIKey(old), "an id is never reused")
        XCTAssertEqual(try b.apiKey(id: "k1"), old)
        XCTAssertEqual(try b.apiKey(id: "k1")?.tenant, Callers.tenant.lowercased())
        XCTAssertNil(try b.apiKey(id: "K1"), "ids are exact")
        XCTAssertEqual(try b.apiKeys(), [new, old])
        XCTAssertTrue(try b.revokeAPIKey(id: "k1", at: 300))
        XCTAssertFalse(try a.revokeAPIKey(id: "k1", at: 400), "a revoked key is not revoked twice")
        XCTAssertFalse(try a.revokeAPIKey(id: "missing", at: 400))
        XCTAssertEqual(try a.apiKey(id: "k1")?.revoked, 300)
        XCTAssertNil(try a.apiKey(id: "k2")?.revoked)
    }

    func testIntrospectionsAreSharedUntilTheyLapseAndLapsedOnesAreDropped() throws {
        let a = try openProviderStore(), b = try openProviderStore()
        try a.saveIntrospection(provider: "github", tokenDigest: "d1", summary: #"{"login":"octo"}"#, expires: 1000, now: 100)
        XCTAssertEqual(try b.introspection(provider: "github", tokenDigest: "d1", now: 999), #"{"login":"octo"}"#)
        XCTAssertNil(try b.introspection(provider: "google", tokenDigest: "d1", now: 500), "each provider keeps its own verdicts")
        XCTAssertNil(try b.introspection(provider: "github", tokenDigest: "d1", now: 1000))
        try b.saveIntrospection(provider: "github", tokenDigest: "d1", summary: #"{"login":"octo2"}"#, expires: 2000, now: 100)
        XCTAssertEqual(try a.introspection(provider: "github", tokenDigest: "d1", now: 1500), #"{"login":"octo2"}"#, "a newer answer replaces")
        try a.saveIntrospection(provider: "google", tokenDigest: "d2", summary: "{}", expires: 3000, now: 2500)
        XCTAssertNil(try b.introspection(provider: "github", tokenDigest: "d1", now: 0), "a lapsed verdict is dropped on the next save")
        XCTAssertEqual(try b.introspection(provider: "google", tokenDigest: "d2", now: 2600), "{}")
    }
}
