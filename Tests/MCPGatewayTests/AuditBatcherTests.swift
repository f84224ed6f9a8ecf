import Foundation
import MCPJSON
import XCTest
@testable import MCPGateway

/// Group commit: concurrent appends share a transaction, yet each returns only once its
/// own record is committed, and a failed transaction fails every request in it.
final class AuditBatcherTests: XCTestCase {
    static func record(_ id: String) -> AuditRecord {
        AuditRecord(time: 1, requestId: id, decision: "allowed", httpStatus: 200, latencyMilliseconds: 1)
    }

    /// Runs `body(thread, i)` on `threads` threads, `each` times per thread, and waits for all.
    static func hammer(threads: Int, each: Int, _ body: @escaping @Sendable (Int, Int) -> Void) {
        let group = DispatchGroup()
        for t in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                for i in 0..<each { body(t, i) }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "a waiter was lost")
    }

    func testEveryAppendReturnsAfterItsOwnRecordIsCommitted() {
        let lock = NSLock()
        nonisolated(unsafe) var committed = Set<String>()
        nonisolated(unsafe) var batches: [Int] = []
        nonisolated(unsafe) var early: [String] = []
        let batcher = AuditBatcher { records in
            usleep(200)  // a slow write, so that others queue behind it
            lock.withLock {
                committed.formUnion(records.map(\.requestId))
                batches.append(records.count)
            }
        }
        Self.hammer(threads: 16, each: 100) { t, i in
            let id = "\(t)-\(i)"
            do { try batcher.append(Self.record(id)) } catch { XCTFail("\(error)") }
            lock.withLock { if !committed.contains(id) { early.append(id) } }
        }
        XCTAssertEqual(early, [], "append returned before its record was committed")
        XCTAssertEqual(committed.count, 1600)
        XCTAssertEqual(batches.reduce(0, +), 1600, "a record was written twice")
        XCTAssertGreaterThan(batches.max() ?? 0, 1, "no batch ever held more than one record")
    }

    func testAFailedTransactionFailsEveryAppendInIt() {
        struct DiskGone: Error {}
        let lock = NSLock()
        nonisolated(unsafe) var writes = 0
        nonisolated(unsafe) var succeeded = 0
        nonisolated(unsafe) var failed = 0
        // Every other transaction fails: each append must report its own transaction's fate.
        let batcher = AuditBatcher { _ in
            let n = lock.withLock { writes += 1; return writes }
            usleep(100)
            if n % 2 == 0 { throw DiskGone() }
        }
        Self.hammer(threads: 8, each: 100) { _, i in
            do {
                try batcher.append(Self.record("\(i)"))
                lock.withLock { succeeded += 1 }
            } catch {
                XCTAssertTrue(error is DiskGone)
                lock.withLock { failed += 1 }
            }
        }
        XCTAssertEqual(succeeded + failed, 800)
        XCTAssertGreaterThan(failed, 0)
        XCTAssertGreaterThan(succeeded, 0)
    }

    func testConcurrentAppendsAllReachTheStore() throws {
        let dir = NSTemporaryDirectory() + "audit-batch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/store.db", durable: false)
        Self.hammer(threads: 12, each: 150) { t, i in
            do { try store.appendAudit(Self.record("\(t)-\(i)")) } catch { XCTFail("\(error)") }
        }
        // Read back through a second connection, as another process would.
        let ids = try SQLiteStore(path: dir + "/store.db").audit(since: 0, tenant: nil, limit: 10_000).map(\.requestId)
        XCTAssertEqual(ids.count, 1800)
        XCTAssertEqual(Set(ids).count, 1800)
    }

    /// A trail that cannot be written still refuses with 503: no answer goes out unrecorded.
    func testUnwritableTrailAnswers503() throws {
        let f = try GatewayFixture()
        let token = try f.token()
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        XCTAssertEqual(f.post(call, token: token).status, 200)
        try SQLiteDatabase(path: f.gateway.config.resolvedStorePath).execute("DROP TABLE audit")
        let r = f.post(call, token: token)
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "5")
        XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains("11111111-1111-4111-8111-111111111111"))
    }
}
