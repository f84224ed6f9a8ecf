import GatewayStore
import Foundation
@testable import GatewayStore
import MCPJSON
import XCTest
@testable import MCPGateway

/// Worker threads append at once; every record reaches the store, and a trail that
/// cannot be written refuses the request (503) rather than answer it unrecorded.
final class AuditConcurrencyTests: XCTestCase {
    static func record(_ id: String) -> AuditRecord {
        AuditRecord(time: 1, requestId: id, decision: "allowed", httpStatus: 200, latencyMilliseconds: 1)
    }

    func testConcurrentAppendsAllReachTheStore() throws {
        let dir = NSTemporaryDirectory() + "audit-concurrency-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/store.db", durable: false)
        let group = DispatchGroup()
        for t in 0..<12 {
            group.enter()
            Thread.detachNewThread {
                for i in 0..<150 {
                    do { try store.appendAudit(Self.record("\(t)-\(i)")) } catch { XCTFail("\(error)") }
                }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success)
        // Read back through a second connection, as another process would.
        let ids = try SQLiteStore(path: dir + "/store.db").audit(since: 0, tenant: nil, limit: 10_000).map(\.requestId)
        XCTAssertEqual(ids.count, 1800)
        XCTAssertEqual(Set(ids).count, 1800)
    }

    func testUnwritableTrailAnswers503() throws {
        let f = try GatewayFixture()
        let token = try f.token()
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        XCTAssertEqual(f.post(call, token: token).status, 200)
        // The trail is the journal now: its directory goes away once the first journal is drained,
        // so the next record has nowhere to be written.
        f.instance.stores.audit.endServing()
        try FileManager.default.removeItem(atPath: JournaledAuditLog.directory(forStore: f.instance.config.resolvedStorePath))
        let r = f.post(call, token: token)
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "5")
        XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains("11111111-1111-4111-8111-111111111111"))
    }
}
