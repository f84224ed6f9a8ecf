import Foundation
@testable import GatewayStore
import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// The busy wait every SQLite connection uses: short steps while another connection (or
/// process) holds the lock, the same overall timeout, and a precise refusal when it passes.
final class SQLiteBusyWaitTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "sqlite-busy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    var storePath: String { dir + "/store.db" }

    func testStepsDoubleFromTwentyMicrosecondsAndStayUnderAMillisecond() {
        XCTAssertEqual((0..<7).map { SQLiteBusyWait.step(attempt: $0) }, [20_000, 40_000, 80_000, 160_000, 320_000, 500_000, 500_000])
        XCTAssertEqual(SQLiteBusyWait.step(attempt: 10_000), 500_000)
        XCTAssertEqual(SQLiteBusyWait.step(attempt: -1), 20_000)
    }

    func testAWaitGivesUpOnlyAfterItsTimeoutAndANewWaitStartsAfresh() {
        let wait = SQLiteBusyWait(timeoutMilliseconds: 30)
        let started = Date()
        var attempt: Int32 = 0
        while wait.retry(attempt: attempt) { attempt += 1 }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.030)
        XCTAssertGreaterThan(attempt, 5, "short steps: many retries within the timeout")
        XCTAssertTrue(wait.retry(attempt: 0), "attempt 0 begins another wait")
    }

    /// A connection holds the write lock past the other's timeout: the other fails with SQLite's
    /// "database is locked", after waiting the whole timeout, not at once and not for the default.
    func testAStoreLockedPastTheTimeoutFailsAfterTheTimeout() throws {
        let holder = try SQLiteDatabase(path: storePath)
        let waiter = try SQLiteStore(path: storePath, busyTimeoutMilliseconds: 300)
        try holder.execute("BEGIN IMMEDIATE")
        let started = Date()
        XCTAssertThrowsError(try waiter.appendAudit(AuditJournalTests.record("blocked"))) { error in
            XCTAssertTrue("\(error)".contains("database is locked"), "\(error)")
        }
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(waited, 0.3)
        XCTAssertLessThan(waited, 5)
        try holder.execute("COMMIT")
        try waiter.appendAudit(AuditJournalTests.record("after"))
        XCTAssertEqual(try waiter.audit(since: 0, tenant: nil, limit: 10).map(\.requestId), ["after"])
    }

    func testAWaiterGetsTheLockOnceTheHolderCommits() throws {
        let holder = try SQLiteDatabase(path: storePath)
        let waiter = try SQLiteStore(path: storePath)
        try holder.execute("BEGIN IMMEDIATE")
        let released = expectation(description: "holder committed")
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) {
            try? holder.execute("COMMIT")
            released.fulfill()
        }
        try waiter.appendAudit(AuditJournalTests.record("waited"))
        wait(for: [released], timeout: 5)
        XCTAssertEqual(try waiter.audit(since: 0, tenant: nil, limit: 10).map(\.requestId), ["waited"])
    }

    /// Through the whole path, with the audit trail written straight to SQLite: a store that stays
    /// locked past the busy timeout refuses the request with the audit stage's 503, tool not run.
    func testARequestWhoseStoreStaysLockedIsRefused503() throws {
        let f = try GatewayFixture()
        let path = f.instance.config.resolvedStorePath
        var builder = InstanceBuilder(config: f.instance.config)
        builder.stores = StateStores(try SQLiteStore(path: path, busyTimeoutMilliseconds: 200))
        let gateway = Gateway(instances: [try builder.build()])
        let holder = try SQLiteDatabase(path: path)
        try holder.execute("BEGIN IMMEDIATE")
        let body = GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        let headers = HTTPHeaders(["content-type": "application/json", "accept": "application/json, text/event-stream",
                                   "authorization": "Bearer \(try f.token())"])
        let r = gateway.respond(to: HTTPRequest(method: "POST", path: "/mcp", headers: headers, body: JSONWriter.serialize(body)))
        try holder.execute("COMMIT")
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "5")
        XCTAssertEqual(r.json?["error"]?["message"]?.stringValue, "The server cannot record this request right now; try again shortly")
        XCTAssertEqual(try SQLiteStore(path: path).audit(since: 0, tenant: nil, limit: 10), [], "nothing recorded, nothing answered")
    }

    // MARK: Several processes

    static let childStoreVariable = "MCP_FCGI_TEST_BUSY_STORE"
    static let childWrites = 200

    /// Four processes write the same store at once, one transaction per record: every write
    /// waits its turn and none fails with "database is locked".
    func testConcurrentWriterProcessesAllCommit() throws {
        _ = try SQLiteStore(path: storePath)
        let children = try ChildTestProcesses.start("MCPGatewayTests.SQLiteBusyWaitTests/testChildProcessWritesTransactions", count: 4) {
            [Self.childStoreVariable: self.storePath, "MCP_FCGI_TEST_BUSY_CHILD": "\($0)"]
        }
        for p in children { p.waitUntilExit() }
        XCTAssertEqual(children.map(\.terminationStatus), [0, 0, 0, 0])
        let ids = try SQLiteStore(path: storePath).audit(since: 0, tenant: nil, limit: 10_000).map(\.requestId)
        XCTAssertEqual(Set(ids), Set((0..<4).flatMap { c in (0..<Self.childWrites).map { "c\(c)-\($0)" } }))
    }

    /// Run only as a child of the test above (its environment names the store).
    func testChildProcessWritesTransactions() throws {
        guard let path = ProcessInfo.processInfo.environment[Self.childStoreVariable],
              let child = ProcessInfo.processInfo.environment["MCP_FCGI_TEST_BUSY_CHILD"] else {
            throw XCTSkip("a child of testConcurrentWriterProcessesAllCommit")
        }
        let store = try SQLiteStore(path: path, durable: false)
        for i in 0..<Self.childWrites { try store.appendAudit(AuditJournalTests.record("c\(child)-\(i)", time: Double(i))) }
    }
}
