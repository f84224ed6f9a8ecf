import Foundation
@testable import GatewayStore
import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// What unauthenticated traffic and readiness probes may cost the shared store: refused
/// requests before authentication are sampled, the store has a size ceiling, `/ready` reads only.
final class StoreGrowthTests: XCTestCase {
    func records(_ f: GatewayFixture) throws -> [AuditRecord] {
        // As `mcp-fcgi audit tail` reads it, in another process: journal and store as one.
        try InstanceBuilder.openStores(for: f.instance.config, durable: true).audit.audit(since: 0, tenant: nil, limit: 100_000)
    }

    func ready(_ gateway: Gateway) -> HTTPResponse {
        gateway.respond(to: HTTPRequest(method: "GET", path: "/ready"))
    }

    /// The sample bucket refills one record a second at the default rate: allow for the test's own duration.
    func sampleCeiling(perMinute: Int, since start: Date) -> Int {
        perMinute + Int((Date().timeIntervalSince(start) * Double(perMinute) / 60).rounded(.up))
    }

    func testAThousandUnauthenticatedRequestsLeaveOnlyTheSample() throws {
        let f = try GatewayFixture(extra: ["audit": ["include_arguments": true]])
        let start = Date()
        let bulky: JSONValue = .string(String(repeating: "x", count: 2000))
        for i in 0..<1000 {
            let call = GatewayFixture.legacyBody("tools/call", id: i, params: ["name": "whoami", "arguments": ["note": bulky]])
            XCTAssertEqual(f.post(call, token: i % 2 == 0 ? nil : "not-a-token").status, 401)
        }
        let token = try f.token()
        for _ in 0..<3 {
            XCTAssertEqual(f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": ["note": bulky]]),
                                  token: token).status, 200)
        }
        let all = try records(f)
        let unauthenticated = all.filter { $0.user == nil }
        XCTAssertGreaterThan(unauthenticated.count, 0)
        XCTAssertLessThanOrEqual(unauthenticated.count, sampleCeiling(perMinute: 60, since: start))
        XCTAssertTrue(unauthenticated.allSatisfy { $0.arguments == nil && $0.argumentsDigest != nil })
        // Authenticated calls keep one record each, with the arguments the operator asked for.
        let authenticated = all.filter { $0.user != nil }
        XCTAssertEqual(authenticated.count, 3)
        XCTAssertTrue(authenticated.allSatisfy { $0.arguments?.contains("xxxx") == true })
        // Every refusal is still counted.
        XCTAssertEqual(f.instance.metrics.figures().authFailures, 1000)
    }

    func testTheSampleIsSharedByEveryProcessOfTheSite() throws {
        let f = try GatewayFixture(extra: ["audit": ["unauthenticated_per_minute": 10]])
        let other = Gateway(instances: [try InstanceBuilder(config: f.instance.config).build()])
        let start = Date()
        for _ in 0..<20 {
            _ = f.post(GatewayFixture.legacyBody("ping"))
            _ = other.respond(to: HTTPRequest(method: "POST", path: "/mcp",
                                              headers: HTTPHeaders(["content-type": "application/json",
                                                                    "accept": "application/json, text/event-stream"]),
                                              body: JSONWriter.serialize(GatewayFixture.legacyBody("ping"))))
        }
        XCTAssertLessThanOrEqual(try records(f).count, sampleCeiling(perMinute: 10, since: start))
    }

    func testZeroKeepsNoUnauthenticatedRecord() throws {
        let f = try GatewayFixture(extra: ["audit": ["unauthenticated_per_minute": 0]])
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping")).status, 401)
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: try f.token()).status, 200)
        XCTAssertEqual(try records(f).map(\.decision), ["allowed"])
    }

    func testReadyTakesNoWriteLock() throws {
        let f = try GatewayFixture()
        // Another process in the middle of a write: a probe that wanted the write lock would
        // wait out the busy timeout and then report the store broken.
        let writer = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        try writer.db.execute("BEGIN IMMEDIATE")
        defer { try? writer.db.execute("ROLLBACK") }
        let start = Date()
        for _ in 0..<2 {
            let r = ready(f.gateway)
            XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testReadyChangesNothingInTheStore() throws {
        let f = try GatewayFixture()
        let observer = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        func changes() throws -> Int64? {
            try observer.db.transaction(write: false) { db in try db.query("PRAGMA data_version").first?.first?.int }
        }
        XCTAssertEqual(ready(f.gateway).status, 200)
        let before = try changes()
        for _ in 0..<20 { XCTAssertEqual(ready(f.gateway).status, 200) }
        XCTAssertEqual(try changes(), before)
    }

    func testTheCeilingFlipsReadyAndShowsInSystemStatus() throws {
        let f = try GatewayFixture(extra: ["store": ["max_bytes": 4096]])
        let r = ready(f.gateway)
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.json?["status"], "not_ready")
        XCTAssertTrue(r.json?["reason"]?.stringValue?.contains("store.max_bytes (4096)") == true, String(decoding: r.body, as: UTF8.self))
        // Requests are still served while their record can be written.
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "system_status", "arguments": [:]])
        let status = f.post(call, token: try f.token(roles: ["MCP.Admin"]))
        XCTAssertEqual(status.status, 200)
        let store = status.json?["result"]?["structuredContent"]?["store"]
        XCTAssertEqual(store?["healthy"], false)
        XCTAssertEqual(store?["max_bytes"]?.intValue, 4096)
        XCTAssertTrue(store?["error"]?.stringValue?.contains("store.max_bytes") == true)
    }

    func testDoctorFailsTheStoreAboveItsCeiling() throws {
        let f = try GatewayFixture(extra: ["store": ["max_bytes": 4096]])
        let checks = Doctor(config: f.instance.config, http: DoctorTests.FakeEntra(jwks: [:])).run()
        let store = try XCTUnwrap(checks.first { $0.name == "shared store" })
        XCTAssertEqual(store.outcome, .fail)
        XCTAssertTrue(store.detail.contains("store.max_bytes (4096)"), store.detail)
        let fine = try GatewayFixture()
        let ok = Doctor(config: fine.instance.config, http: DoctorTests.FakeEntra(jwks: [:])).run().first { $0.name == "shared store" }
        XCTAssertEqual(ok?.outcome, .pass)
    }

    func testTheCeilingPrunesTheAuditTrail() throws {
        let f = try GatewayFixture(extra: ["store": ["max_bytes": 4096], "audit": ["retention_days": 1]])
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        try store.appendAudit(AuditRecord(time: 1, requestId: "old", decision: "allowed", httpStatus: 200, latencyMilliseconds: 1))
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: try f.token()).status, 200)
        XCTAssertEqual(try records(f).map(\.requestId).contains("old"), false)
    }

    func testStoreAndSampleKeysAreRead() throws {
        let config = try GatewayFixture(extra: ["store": ["max_bytes": 1_000_000], "audit": ["unauthenticated_per_minute": 5]]).instance.config
        XCTAssertEqual(config.storeMaxBytes, 1_000_000)
        XCTAssertEqual(config.audit.unauthenticatedPerMinute, 5)
        XCTAssertThrowsError(try GatewayFixture(extra: ["store": ["max_bytes": 0]]))
        XCTAssertThrowsError(try GatewayFixture(extra: ["audit": ["unauthenticated_per_minute": -1]]))
    }
}
