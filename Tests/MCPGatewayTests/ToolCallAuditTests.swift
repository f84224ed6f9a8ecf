import Foundation
import GatewayStore
import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// A tool's side effect never happens without a record: an allowed call's record is durable
/// before the tool runs and completed after.
final class ToolCallAuditTests: XCTestCase {
    /// Counts its calls and looks, while it runs, at what the trail already says about it.
    final class WitnessTool: Tool, @unchecked Sendable {
        let definition = ToolDefinition(name: "side_effect", description: "Changes something upstream.",
                                        inputSchema: ["type": "object"], annotations: .readOnlyLocal)
        let trail: AuditLog
        private let lock = NSLock()
        private var seenDuringCall: [AuditRecord] = []
        private var callCount = 0

        init(trail: AuditLog) { self.trail = trail }

        var calls: Int { lock.withLock { callCount } }
        var recordsSeenWhileRunning: [AuditRecord] { lock.withLock { seenDuringCall } }

        func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
            let mine = try trail.audit(since: 0, tenant: nil, limit: 100).filter { $0.requestId == context.requestId }
            lock.withLock {
                callCount += 1
                seenDuringCall = mine
            }
            var result = ToolResult.structured(["done": true])
            result.upstreamStatus = 201
            return result
        }
    }

    /// The real store, but refusing to begin or to complete a tool call's record on demand.
    final class FailingAuditLog: AuditLog, @unchecked Sendable {
        struct Refused: Error {}
        let store: AuditLog
        let refuseBegin: Bool
        let refuseCompletion: Bool
        let refuseAppend: Bool

        init(store: AuditLog, refuseBegin: Bool = false, refuseCompletion: Bool = false, refuseAppend: Bool = false) {
            self.store = store
            self.refuseBegin = refuseBegin
            self.refuseCompletion = refuseCompletion
            self.refuseAppend = refuseAppend
        }

        func appendAudit(_ record: AuditRecord) throws {
            if refuseAppend { throw Refused() }
            try store.appendAudit(record)
        }
        func appendSampledAudit(_ record: AuditRecord, sample: RateBucket) throws -> Bool {
            try store.appendSampledAudit(record, sample: sample)
        }
        func beginAudit(_ record: AuditRecord) throws -> AuditEntry {
            if refuseBegin { throw Refused() }
            return try store.beginAudit(record)
        }
        func completeAudit(_ entry: AuditEntry, with record: AuditRecord) throws {
            if refuseCompletion { throw Refused() }
            try store.completeAudit(entry, with: record)
        }
        func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord] {
            try store.audit(since: since, tenant: tenant, limit: limit)
        }
        func pruneAudit(before: Double) throws -> Int { try store.pruneAudit(before: before) }
    }

    struct Wired {
        let gateway: Gateway
        let tool: WitnessTool
        let store: SQLiteStore
    }

    func wire(_ f: GatewayFixture, refuseBegin: Bool = false, refuseCompletion: Bool = false, refuseAppend: Bool = false) throws -> Wired {
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        var stores = StateStores(store)
        stores.audit = FailingAuditLog(store: store, refuseBegin: refuseBegin, refuseCompletion: refuseCompletion,
                                       refuseAppend: refuseAppend)
        let tool = WitnessTool(trail: store)
        var builder = InstanceBuilder(config: f.instance.config)
        builder.stores = stores
        builder.extraTools = [tool]
        return Wired(gateway: Gateway(instances: [try builder.build()]), tool: tool, store: store)
    }

    func call(_ gateway: Gateway, _ f: GatewayFixture, tool: String = "side_effect") throws -> HTTPResponse {
        let body = GatewayFixture.legacyBody("tools/call", params: ["name": .string(tool), "arguments": [:]])
        let headers = HTTPHeaders(["content-type": "application/json", "accept": "application/json, text/event-stream",
                                   "authorization": "Bearer \(try f.token())"])
        return gateway.respond(to: HTTPRequest(method: "POST", path: "/mcp", headers: headers, body: JSONWriter.serialize(body)))
    }

    func testTheRecordIsDurableBeforeTheToolRunsAndCompletedAfter() throws {
        let f = try GatewayFixture()
        let w = try wire(f)
        let r = try call(w.gateway, f)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(w.tool.calls, 1)
        let seen = try XCTUnwrap(w.tool.recordsSeenWhileRunning.first)
        XCTAssertEqual(w.tool.recordsSeenWhileRunning.count, 1)
        XCTAssertFalse(seen.completed)
        XCTAssertEqual(seen.decision, "allowed")
        XCTAssertEqual(seen.reason, "in progress")
        XCTAssertEqual(seen.tool, "side_effect")
        XCTAssertEqual(seen.user, "11111111-1111-4111-8111-111111111111")

        let trail = try w.store.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.count, 1, "one record per call, begun then completed")
        XCTAssertEqual(trail[0].requestId, seen.requestId)
        XCTAssertTrue(trail[0].completed)
        XCTAssertEqual(trail[0].httpStatus, 200)
        XCTAssertEqual(trail[0].upstreamStatus, 201)
        XCTAssertNil(trail[0].reason)
        XCTAssertNil(trail[0].json["completed"], "a completed record reads as it always has")
    }

    func testAToolWhoseRecordCannotBeBegunIsNeverCalled() throws {
        let f = try GatewayFixture()
        let w = try wire(f, refuseBegin: true)
        let r = try call(w.gateway, f)
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.header("Retry-After"), "5")
        XCTAssertEqual(w.tool.calls, 0, "nothing may happen upstream without a record")
        let trail = try w.store.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.map(\.httpStatus), [503])
        XCTAssertEqual(trail.map(\.reason), ["audit unavailable"])
    }

    func testAToolThatRanWhileTheCompletionFailedLeavesItsStartedRecord() throws {
        let f = try GatewayFixture()
        let w = try wire(f, refuseCompletion: true)
        let r = try call(w.gateway, f)
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(w.tool.calls, 1)
        let trail = try w.store.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.count, 1)
        XCTAssertEqual(trail.first?.tool, "side_effect")
        XCTAssertEqual(trail.first?.completed, false)
        XCTAssertEqual(trail.first?.reason, "in progress")
        XCTAssertEqual(trail.first?.json["completed"], .bool(false))
    }

    /// whoami answers from the request alone: nothing to record before it runs, so its one record
    /// is written completed, before the answer; a trail that refuses it refuses the call.
    func testAToolThatAnswersFromTheRequestAloneIsRecordedOnceBeforeItsAnswer() throws {
        let f = try GatewayFixture()
        let w = try wire(f, refuseBegin: true)
        XCTAssertTrue(WhoAmITool().answersFromTheRequestAlone)
        XCTAssertFalse(w.tool.answersFromTheRequestAlone, "a tool says so itself, or it is recorded as begun first")
        XCTAssertEqual(try call(w.gateway, f, tool: "whoami").status, 200)
        let trail = try w.store.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.map(\.tool), ["whoami"])
        XCTAssertEqual(trail.map(\.httpStatus), [200])
        XCTAssertTrue(trail.allSatisfy(\.completed))

        let g = try GatewayFixture()
        let refusing = try wire(g, refuseAppend: true)
        let r = try call(refusing.gateway, g, tool: "whoami")
        XCTAssertEqual(r.status, 503, "no answer without its record")
        XCTAssertEqual(r.header("Retry-After"), "5")
    }

    func testOtherRequestsKeepTheirSingleWrite() throws {
        let f = try GatewayFixture()
        let w = try wire(f, refuseBegin: true)
        let headers = HTTPHeaders(["content-type": "application/json", "accept": "application/json, text/event-stream",
                                   "authorization": "Bearer \(try f.token())"])
        let ping = w.gateway.respond(to: HTTPRequest(method: "POST", path: "/mcp", headers: headers,
                                                     body: JSONWriter.serialize(GatewayFixture.legacyBody("ping"))))
        XCTAssertEqual(ping.status, 200)
        // A denied tool call never begins a record either.
        XCTAssertEqual(try call(w.gateway, f, tool: "audit_log").status, 403)
        let trail = try w.store.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.map(\.httpStatus), [200, 403])
        XCTAssertTrue(trail.allSatisfy(\.completed))
    }

    func testTheStoreCompletesABegunRecordOnce() throws {
        let f = try GatewayFixture()
        let store = try SQLiteStore(path: f.instance.config.resolvedStorePath)
        let begun = AuditRecord(time: 10, requestId: "r1", tool: "t", decision: "allowed", reason: "in progress",
                                httpStatus: 0, latencyMilliseconds: 0)
        let entry = try store.beginAudit(begun)
        XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 10).map(\.completed), [false])
        var done = begun
        done.decision = "denied"
        done.reason = "claims challenge"
        done.httpStatus = 401
        done.upstreamStatus = 401
        done.latencyMilliseconds = 12
        try store.completeAudit(entry, with: done)
        XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 10), [done])
        XCTAssertThrowsError(try store.completeAudit(entry, with: done), "a record is completed once")
    }

    /// A tool named with a "K" is also found as "\u{212A}pi_report" (KELVIN SIGN, canonically equivalent):
    /// the trail, the metrics and the logs carry the registered name, byte for byte.
    func testAToolCalledByAnEquivalentNameIsRecordedUnderItsRegisteredName() throws {
        struct KPITool: Tool {
            let definition = ToolDefinition(name: "Kpi_report", description: "Reports a KPI.", inputSchema: ["type": "object"],
                                            annotations: .readOnlyLocal, permission: "admin")
            func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult { .structured(["kpi": 1]) }
        }
        let f = try GatewayFixture(tools: [KPITool()])
        let sent = "\u{212A}pi_report"
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("tools/call", params: ["name": .string(sent), "arguments": [:]]),
                              token: try f.token(roles: ["MCP.Admin"])).status, 200)
        // A caller without the permission is refused, and recorded under the registered name too.
        let denied = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": .string(sent), "arguments": [:]]),
                            token: try f.token())
        XCTAssertEqual(denied.status, 403)
        let trail = try f.instance.stores.audit.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.count, 2)
        for record in trail {
            XCTAssertEqual(record.tool.map { Array($0.utf8) }, Array("Kpi_report".utf8), "recorded as sent: \(record.tool ?? "")")
        }
        let metrics = f.gateway.respond(to: HTTPRequest(method: "GET", path: "/metrics", remoteAddress: "127.0.0.1"))
        let text = String(decoding: metrics.body, as: UTF8.self)
        XCTAssertTrue(text.contains("tool=\"Kpi_report\",status=\"200\""), text)
        XCTAssertFalse(text.contains("tool=\"_pi_report\""), text)
    }
}
