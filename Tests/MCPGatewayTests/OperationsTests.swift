import SharedMetrics
import GatewayStore
import GatewaySupport
import EntraAuth
import Foundation
import MCPJSON
import XCTest
@testable import MCPGateway
import UpstreamHTTP

/// Shared counters, /metrics, /ready and system_status.
final class OperationsTests: XCTestCase {
    func get(_ f: GatewayFixture, _ path: String, remote: String? = "127.0.0.1") -> HTTPResponse {
        f.gateway.respond(to: HTTPRequest(method: "GET", path: path, remoteAddress: remote))
    }

    func metricsText(_ f: GatewayFixture) -> String {
        String(decoding: get(f, "/metrics").body, as: UTF8.self)
    }

    // MARK: shared counters

    func testCountersAreSharedBetweenMappingsOfTheSameFile() throws {
        let path = NSTemporaryDirectory() + "counters-\(UUID().uuidString)"
        defer { unlink(path) }
        let a = try SharedCounters(path: path, capacity: 64)
        let b = try SharedCounters(path: path, capacity: 64)
        a.add("x_total{k=\"1\"}", 3)
        b.add("x_total{k=\"1\"}", 4)
        b.add("y_total")
        XCTAssertEqual(a.snapshot(), ["x_total{k=\"1\"}": 7, "y_total": 1])
        a.raise("t", to: 10)
        b.raise("t", to: 5)
        XCTAssertEqual(b.snapshot()["t"], 10)
    }

    func testConcurrentAddsAreNotLost() throws {
        let path = NSTemporaryDirectory() + "counters-\(UUID().uuidString)"
        defer { unlink(path) }
        let tables = try (0..<4).map { _ in try SharedCounters(path: path, capacity: 64) }
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            for n in 0..<20_000 { tables[i % 4].add(n % 2 == 0 ? "even" : "odd") }
        }
        XCTAssertEqual(tables[0].snapshot(), ["even": 80_000, "odd": 80_000])
    }

    func testFullTableDropsNewSeriesWithoutFailing() throws {
        let path = NSTemporaryDirectory() + "counters-\(UUID().uuidString)"
        defer { unlink(path) }
        let t = try SharedCounters(path: path, capacity: 4)
        for i in 0..<10 { t.add("s\(i)") }
        XCTAssertEqual(t.snapshot().count, 4)
        XCTAssertEqual(t.snapshot().values.reduce(0, +), 4)
    }

    func testRecentErrorsNewestFirstAndBounded() throws {
        let path = NSTemporaryDirectory() + "counters-\(UUID().uuidString)"
        defer { unlink(path) }
        let t = try SharedCounters(path: path, capacity: 8)
        for i in 0..<12 { t.pushError("error \(i)", at: Double(1000 + i)) }
        let errors = try SharedCounters(path: path, capacity: 8).recentErrors()
        XCTAssertEqual(errors.count, 8)
        XCTAssertEqual(errors.first?.text, "error 11")
        XCTAssertEqual(errors.first?.time, 1011)
        XCTAssertEqual(errors.last?.text, "error 4")
    }

    func testProcessRegistryCountsLiveProcessesOnly() throws {
        let path = NSTemporaryDirectory() + "counters-\(UUID().uuidString)"
        defer { unlink(path) }
        let t = try SharedCounters(path: path, capacity: 8)
        XCTAssertEqual(t.liveProcesses, 0)
        t.registerProcess()
        XCTAssertEqual(t.liveProcesses, 1)
        t.unregisterProcess()
        XCTAssertEqual(t.liveProcesses, 0)
    }

    // MARK: networks and config

    func testNetworkRanges() {
        let loop = NetworkRange("127.0.0.0/8")!
        XCTAssertTrue(loop.contains("127.9.8.7"))
        XCTAssertFalse(loop.contains("128.0.0.1"))
        XCTAssertTrue(loop.contains("::ffff:127.0.0.1"))
        XCTAssertTrue(NetworkRange("10.1.0.0/20")!.contains("10.1.15.255"))
        XCTAssertFalse(NetworkRange("10.1.0.0/20")!.contains("10.1.16.0"))
        XCTAssertTrue(NetworkRange("fd00::/8")!.contains("fd12::1"))
        XCTAssertFalse(NetworkRange("fd00::/8")!.contains("fe80::1"))
        XCTAssertTrue(NetworkRange("192.0.2.7")!.contains("192.0.2.7"))
        XCTAssertFalse(NetworkRange("192.0.2.7")!.contains("192.0.2.8"))
        XCTAssertFalse(loop.contains("not an address"))
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "host.example", ""] {
            XCTAssertNil(NetworkRange(bad), bad)
        }
    }

    func testMetricsConfigErrorsHaveAPath() {
        let base: [(String, JSONValue)] = [("server", ["public_url": "https://h.example/mcp"]),
                                           ("auth", ["mode": "development", "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47",
                                                     "client_id": "api://x"])]
        var root = JSONObject(pairs: base)
        root["metrics"] = ["allowed_networks": ["10.0.0.0/8", "bogus"], "colour": "blue"]
        XCTAssertThrowsError(try ProcessConfig.parse(root)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("metrics.allowed_networks[1]: 'bogus' is not an IP network"), text)
            XCTAssertTrue(text.contains("metrics.colour: unknown setting"), text)
        }
        root["metrics"] = ["allowed_networks": ["10.0.0.0/8"]]
        XCTAssertEqual(try ProcessConfig.parse(root).instances[0].metrics.allowedNetworks.map(\.description), ["10.0.0.0/8"])
    }

    // MARK: /metrics

    func testMetricsOnlyForAllowedNetworks() throws {
        let f = try GatewayFixture(extra: ["metrics": ["allowed_networks": ["10.9.0.0/16"]]])
        XCTAssertEqual(get(f, "/metrics", remote: "127.0.0.1").status, 403)
        XCTAssertEqual(get(f, "/metrics", remote: nil).status, 403)
        XCTAssertEqual(get(f, "/metrics", remote: "10.9.3.4").status, 200)
        let loopbackOnly = try GatewayFixture()
        XCTAssertEqual(get(loopbackOnly, "/metrics", remote: "192.0.2.1").status, 403)
        XCTAssertEqual(get(loopbackOnly, "/metrics", remote: "::1").status, 200)
        let off = try GatewayFixture(extra: ["metrics": ["enabled": false]])
        XCTAssertEqual(get(off, "/metrics").status, 404)
    }

    func testMetricsCountRequestsAuthFailuresCacheAndRateLimits() throws {
        let f = try GatewayFixture(extra: ["rate_limits": ["user_per_minute": 1, "user_burst": 2]])
        let token = try f.token()
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        XCTAssertEqual(f.post(call, token: token).status, 200)
        XCTAssertEqual(f.post(call, token: token).status, 200)
        XCTAssertEqual(f.post(call, token: token).status, 429)
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("tools/call", params: ["name": .string("no-such-tool-\(UUID())"), "arguments": [:]]),
                              token: try f.token(tenant: GatewayFixture.tenant, ttl: 300)).status, 429)
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: "abc.def.ghi").status, 401)
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping")).status, 401)
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("evil\nmethod"), token: "x").status, 401)
        let expired = try f.minter.mint(tenantId: GatewayFixture.tenant, objectId: "11111111-1111-4111-8111-111111111111",
                                        audience: GatewayFixture.audience, scopes: ["mcp.tools"], roles: [], ttl: -3600)
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: expired).status, 401)
        XCTAssertEqual(get(f, "/health").status, 200)

        let text = metricsText(f)
        XCTAssertTrue(text.contains("# TYPE mcp_requests_total counter"), text)
        XCTAssertTrue(text.contains("mcp_requests_total{method=\"tools/call\",tool=\"whoami\",status=\"200\"} 2"), text)
        XCTAssertTrue(text.contains("mcp_requests_total{method=\"tools/call\",tool=\"whoami\",status=\"429\"} 1"), text)
        XCTAssertTrue(text.contains("mcp_requests_total{method=\"tools/call\",tool=\"unknown\",status=\"429\"} 1"), text)
        XCTAssertTrue(text.contains("mcp_rate_limit_rejections_total 2"), text)
        XCTAssertTrue(text.contains("mcp_auth_failures_total{reason=\"missing_token\"} 1"), text)
        XCTAssertTrue(text.contains("mcp_auth_failures_total{reason=\"expired\"} 1"), text)
        XCTAssertTrue(text.contains("mcp_auth_failures_total{reason=\"malformedToken\"} 2"), text)
        XCTAssertTrue(text.contains("mcp_token_cache_lookups_total{result=\"hit\"} 2"), text)
        XCTAssertTrue(text.contains("mcp_http_requests_total{path=\"/health\",status=\"200\"} 1"), text)
        XCTAssertTrue(text.contains("mcp_token_cache_hit_ratio "), text)
        XCTAssertFalse(text.contains("evil"), text)
        XCTAssertFalse(text.contains(token.prefix(30)), "no token in metrics")
        // Every sample line is "name{labels} number".
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            XCTAssertNotNil(line.split(separator: " ").last.flatMap { Double($0) }, String(line))
        }
    }

    func testMetricsHoldAcrossGatewaysOnTheSameStateDirectory() throws {
        let f = try GatewayFixture()
        // A second gateway over the same state dir stands for another process.
        let other = Gateway(instances: [try InstanceBuilder(config: f.instance.config).build()])
        let token = try f.token()
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        _ = f.post(call, token: token)
        var h = HTTPHeaders(["content-type": "application/json", "accept": "application/json, text/event-stream"])
        h["authorization"] = "Bearer \(token)"
        _ = other.respond(to: HTTPRequest(method: "POST", path: "/mcp", headers: h, body: JSONWriter.serialize(call)))
        XCTAssertTrue(metricsText(f).contains("mcp_requests_total{method=\"tools/call\",tool=\"whoami\",status=\"200\"} 2"))
    }

    func testUpstreamHistogramAndErrors() throws {
        let f = try GatewayFixture()
        final class Failing: HTTPClient {
            func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
                if request.url.contains("down") { throw UpstreamError.connect(host: "down.example", detail: "refused") }
                return UpstreamResponse(status: 503, headers: [], body: [], elapsedSeconds: 0.01)
            }
        }
        let client = MeteredHTTPClient(Failing(), upstream: "powerbi", metrics: f.instance.operations.metrics)
        _ = try client.send(UpstreamRequest(method: "GET", url: "https://api.example/v1?secret=s3cr3t"))
        XCTAssertThrowsError(try client.send(UpstreamRequest(method: "GET", url: "https://down.example/x")))
        let text = metricsText(f)
        XCTAssertTrue(text.contains("# TYPE mcp_upstream_request_duration_seconds histogram"), text)
        XCTAssertTrue(text.contains("mcp_upstream_request_duration_seconds_bucket{upstream=\"powerbi\",le=\"+Inf\"} 2"), text)
        XCTAssertTrue(text.contains("mcp_upstream_request_duration_seconds_count{upstream=\"powerbi\"} 2"), text)
        XCTAssertTrue(text.contains("mcp_upstream_request_duration_seconds_sum{upstream=\"powerbi\"} "), text)
        XCTAssertTrue(text.contains("mcp_upstream_errors_total{upstream=\"powerbi\"} 2"), text)
        f.instance.operations.metrics.observeUpstream("slow", seconds: 3, failed: false)
        let slow = metricsText(f)
        XCTAssertTrue(slow.contains("mcp_upstream_request_duration_seconds_bucket{upstream=\"slow\",le=\"0.005\"} 0"), slow)
        XCTAssertTrue(slow.contains("mcp_upstream_request_duration_seconds_bucket{upstream=\"slow\",le=\"2.5\"} 0"), slow)
        XCTAssertTrue(slow.contains("mcp_upstream_request_duration_seconds_bucket{upstream=\"slow\",le=\"5\"} 1"), slow)
        XCTAssertTrue(slow.contains("mcp_upstream_request_duration_seconds_sum{upstream=\"slow\"} 3\n"), slow)
        let status = f.instance.operations.status()
        let errors = status["last_upstream_errors"]?.arrayValue?.compactMap { $0["error"]?.stringValue } ?? []
        XCTAssertEqual(errors, ["powerbi: connection failure talking to down.example", "powerbi: HTTP 503 from api.example"])
        XCTAssertFalse(JSONWriter.string(status).contains("s3cr3t"))
    }

    func testSystemStatusAndReadyShowRecordsWaitingInAJournal() throws {
        let f = try GatewayFixture()
        let path = f.instance.config.resolvedStorePath
        let store = try SQLiteStore(path: path)
        // Another process's journal, still locked by its writer, which has not moved it in yet.
        let writer = JournaledAuditLog(directory: JournaledAuditLog.directory(forStore: path), store: store, sampleLimiter: store)
        let written = Date().timeIntervalSince1970 - 42
        try writer.appendAudit(AuditJournalTests.record("waiting-1", time: written))
        try writer.appendAudit(AuditJournalTests.record("waiting-2", time: written + 1))
        let st = f.instance.operations.status()["store"]
        XCTAssertEqual(st?["audit_records_waiting"], .integer(2))
        XCTAssertEqual(st?["audit_journals_waiting"], .integer(1))
        XCTAssertGreaterThanOrEqual(st?["audit_oldest_waiting_seconds"]?.intValue ?? 0, 42)
        let ready = get(f, "/ready")
        XCTAssertEqual(ready.json?["audit_records_waiting"], .integer(2))
        XCTAssertGreaterThanOrEqual(ready.json?["audit_oldest_waiting_seconds"]?.intValue ?? 0, 42)
        XCTAssertEqual(try writer.drainAll(), 2)
        XCTAssertEqual(f.instance.operations.status()["store"]?["audit_records_waiting"], .integer(0))
        XCTAssertEqual(f.instance.operations.status()["store"]?["audit_oldest_waiting_seconds"], .null)
    }

    // MARK: /ready

    func testReadyInDevelopmentMode() throws {
        let f = try GatewayFixture()
        let r = get(f, "/ready")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json?["status"], "ready")
        XCTAssertEqual(r.json?["audit_journals_waiting"], .integer(0), "nothing written yet, nothing waiting")
        XCTAssertEqual(r.json?["audit_records_waiting"], .integer(0))
        XCTAssertEqual(r.json?["audit_oldest_waiting_seconds"], .null)
        XCTAssertEqual(f.gateway.respond(to: HTTPRequest(method: "POST", path: "/ready")).status, 405)
    }

    func testNotReadyWithoutSigningKeys() throws {
        let f = try GatewayFixture(auth: ["mode": "entra", "authority": "http://127.0.0.1:9", "allow_insecure_http_for_testing": true])
        let r = get(f, "/ready")
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(r.json?["status"], "not_ready")
        XCTAssertTrue(r.json?["reason"]?.stringValue?.contains("signing keys") == true)
        XCTAssertTrue(metricsText(f).contains("mcp_upstream_errors_total{upstream=\"entra_keys\"} 1"))
    }

    func testNotReadyWhenTheStoreRefusesWrites() throws {
        let f = try GatewayFixture()
        var builder = InstanceBuilder(config: f.instance.config)
        builder.stores = StateStores(RefusingStore())
        let broken = Gateway(instances: [try builder.build()])
        let r = broken.respond(to: HTTPRequest(method: "GET", path: "/ready"))
        XCTAssertEqual(r.status, 503)
        XCTAssertTrue(r.json?["reason"]?.stringValue?.contains("store") == true)
        XCTAssertEqual(r.json?["audit_records_waiting"], .integer(0), "the backlog is reported when not ready too")
    }

    func testReadyChecksEveryInstance() throws {
        let dir = NSTemporaryDirectory() + "ops-instances-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func instance(_ name: String, auth: JSONValue) -> JSONValue {
            ["server": ["mcp_path": .string("/\(name)/mcp"), "public_url": .string("https://h.example/\(name)/mcp")], "auth": auth]
        }
        let dev: JSONValue = ["mode": "development", "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://a"]
        let noKeys: JSONValue = ["tenant_id": "0b7e9c39-8f15-4a5e-9a57-2f5c2e1f4d11", "client_id": "api://b",
                                 "authority": "http://127.0.0.1:9", "allow_insecure_http_for_testing": true]
        func router(_ second: JSONValue) throws -> Gateway {
            try Gateway.make(config: ProcessConfig.parse(JSONObject(pairs: [
                ("state_dir", .string(dir)), ("instances", ["a": instance("a", auth: dev), "b": instance("b", auth: second)]),
            ])))
        }
        let broken = try router(noKeys).respond(to: HTTPRequest(method: "GET", path: "/ready"))
        XCTAssertEqual(broken.status, 503)
        XCTAssertEqual(broken.json?["instance"], "b")
        let fine = try router(["mode": "development", "tenant_id": "0b7e9c39-8f15-4a5e-9a57-2f5c2e1f4d11", "client_id": "api://b"])
        XCTAssertEqual(fine.respond(to: HTTPRequest(method: "GET", path: "/ready")).status, 200)
    }

    // MARK: system_status

    func testSystemStatusForAdminsOnly() throws {
        let f = try GatewayFixture()
        let admin = try f.token(roles: ["MCP.Admin"])
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "system_status", "arguments": [:]])
        let r = f.post(call, token: admin)
        XCTAssertEqual(r.status, 200)
        let s = r.json?["result"]?["structuredContent"]
        XCTAssertEqual(s?["version"]?.stringValue, GatewayVersion.string)
        XCTAssertEqual(s?["store"]?["healthy"], true)
        XCTAssertGreaterThan(s?["store"]?["bytes"]?.intValue ?? 0, 0)
        XCTAssertEqual(s?["signing_keys"]?["source"], "development key")
        XCTAssertEqual(s?["token_cache"]?["misses"]?.intValue, 1)
        XCTAssertEqual(s?["rate_limits"]?["user_per_minute"]?.intValue, 120)
        XCTAssertNotNil(s?["last_upstream_errors"]?.arrayValue)
        XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains(admin.prefix(30)))

        let user = f.post(call, token: try f.token(roles: ["MCP.User"]))
        XCTAssertEqual(user.status, 403)
        let list = f.post(GatewayFixture.legacyBody("tools/list"), token: try f.token(roles: ["MCP.User"]))
        XCTAssertFalse(String(decoding: list.body, as: UTF8.self).contains("system_status"))
    }
}

/// A store whose every call fails, as a full or read-only disk would.
final class RefusingStore: GatewayStore, @unchecked Sendable {
    struct Refused: Error {}
    func addBlock(_ block: Block) throws { throw Refused() }
    func removeBlock(kind: Block.Kind, id: String) throws -> Bool { throw Refused() }
    func blocks(now: Int64) throws -> [Block] { throw Refused() }
    func activeBlock(matching: [(Block.Kind, String)], now: Int64) throws -> Block? { throw Refused() }
    func take(_ buckets: [RateBucket], now: Double) throws -> Double? { throw Refused() }
    func appendAudit(_ record: AuditRecord) throws { throw Refused() }
    func beginAudit(_ record: AuditRecord) throws -> AuditEntry { throw Refused() }
    func completeAudit(_ entry: AuditEntry, with record: AuditRecord) throws { throw Refused() }
    func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord] { throw Refused() }
    func pruneAudit(before: Double) throws -> Int { throw Refused() }
    func createSession(id: String, principal: String, now: Double) throws { throw Refused() }
    func useSession(id: String, principal: String, now: Double, idle: Double) throws -> Bool { throw Refused() }
    func endSession(id: String, principal: String) throws -> Bool { throw Refused() }
    func addMappings(_ mappings: [WorkspaceMapping]) throws { throw Refused() }
    func removeMapping(_ mapping: WorkspaceMapping) throws -> Bool { throw Refused() }
    func mappings(tenant: String?) throws -> [WorkspaceMapping] { throw Refused() }
    func workspaces(tenant: String, user: String, groups: [String]) throws -> Set<String> { throw Refused() }
    func health() throws -> StoreHealth { throw Refused() }
    func probeWrite() throws { throw Refused() }
    func appendSampledAudit(_ record: AuditRecord, sample: RateBucket) throws -> Bool { throw Refused() }
    func backendSession(_ key: BackendSessionKey) throws -> StoredBackendSession? { throw Refused() }
    func saveBackendSession(_ key: BackendSessionKey, _ session: StoredBackendSession, now: Double) throws { throw Refused() }
    func markBackendSessionChecked(_ key: BackendSessionKey, sealed: [UInt8], at: Double) throws { throw Refused() }
    func deleteBackendSession(_ key: BackendSessionKey) throws -> Bool { throw Refused() }
    func oauthClient(id: String, now: Double) throws -> OAuthClientRecord? { throw Refused() }
    func saveOAuthClient(_ client: OAuthClientRecord) throws { throw Refused() }
    func removeOAuthClient(id: String) throws -> Bool { throw Refused() }
    func oauthClients() throws -> [OAuthClientRecord] { throw Refused() }
    func savePendingAuthorization(_ pending: PendingAuthorization) throws { throw Refused() }
    func pendingAuthorization(id: String, now: Double) throws -> PendingAuthorization? { throw Refused() }
    func takePendingAuthorization(upstreamState: String, now: Double) throws -> PendingAuthorization? { throw Refused() }
    func saveAuthorizationCode(_ code: StoredAuthorizationCode) throws { throw Refused() }
    func redeemAuthorizationCode(sha256: String, now: Double) throws -> CodeRedemption? { throw Refused() }
    func saveGrant(_ grant: OAuthGrant) throws { throw Refused() }
    func grant(id: String) throws -> OAuthGrant? { throw Refused() }
    func updateGrantUpstreamToken(id: String, sealedRefreshToken: [UInt8], now: Double) throws { throw Refused() }
    func revokeGrant(id: String, now: Double) throws -> Bool { throw Refused() }
    func revokeGrants(tenant: String, user: String, now: Double) throws -> Int { throw Refused() }
    func grants(tenant: String?, user: String?) throws -> [OAuthGrant] { throw Refused() }
    func saveRefreshToken(_ token: StoredRefreshToken) throws { throw Refused() }
    func refreshToken(sha256: String) throws -> StoredRefreshToken? { throw Refused() }
    func markRefreshTokenRotated(sha256: String, now: Double) throws -> Bool { throw Refused() }
    func pruneOAuth(now: Double) throws { throw Refused() }
}
