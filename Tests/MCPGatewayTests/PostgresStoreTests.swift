import Foundation
import GatewayStore
import MCPJSON
@testable import MCPGateway
import MCPGatewayTesting
@testable import PostgresStore
import XCTest

/// A fresh database on the test run's PostgreSQL server (see `TestPostgresServer`).
func freshPostgresSettings() throws -> PostgresSettings {
    try PostgresSettings(url: try TestPostgresServer.shared.get().createDatabase())
}

/// The engine-neutral store tests, on PostgreSQL: two handles are two pools, as two hosts would have.
final class PostgresStoreBehaviourTests: StoreBehaviourTests {
    var settings: PostgresSettings!

    override func setUpWithError() throws { settings = try freshPostgresSettings() }

    override func openStore() throws -> any GatewayStore { try PostgresStore(settings: settings) }

    // Linux's test discovery lists only a class's own methods: each inherited test is named again.
    override func testBlocksSeenByEveryConnectionAndExpire() throws { try super.testBlocksSeenByEveryConnectionAndExpire() }
    override func testTokenBucketIsSharedAcrossConnections() throws { try super.testTokenBucketIsSharedAcrossConnections() }
    override func testConcurrentWritersLoseNoCounts() throws { try super.testConcurrentWritersLoseNoCounts() }
    override func testStoreKeepsOneSealedRowPerUserAndBackend() throws { try super.testStoreKeepsOneSealedRowPerUserAndBackend() }
    override func testUserAndGroupMappingsPerTenant() throws { try super.testUserAndGroupMappingsPerTenant() }
    override func testLegacySessionsAreBoundToTheirPrincipalAndIdleOut() throws { try super.testLegacySessionsAreBoundToTheirPrincipalAndIdleOut() }
    override func testAuditKeepsTheNewestInOrderCompletesBegunRecordsAndPrunes() throws { try super.testAuditKeepsTheNewestInOrderCompletesBegunRecordsAndPrunes() }
    override func testSampledAuditKeepsOnlyWhileTheSampleHasTokens() throws { try super.testSampledAuditKeepsOnlyWhileTheSampleHasTokens() }
    override func testHealthReadsAndProbesWrites() throws { try super.testHealthReadsAndProbesWrites() }
    override func testAPIKeysRoundTripNewestFirstAndARevocationIsSeenByEveryHandle() throws {
        try super.testAPIKeysRoundTripNewestFirstAndARevocationIsSeenByEveryHandle()
    }
    override func testIntrospectionsAreSharedUntilTheyLapseAndLapsedOnesAreDropped() throws {
        try super.testIntrospectionsAreSharedUntilTheyLapseAndLapsedOnesAreDropped()
    }
}

/// The OAuth front's compare-and-set semantics, on PostgreSQL.
final class PostgresOAuthStoreTests: OAuthStoreTests {
    var settings: PostgresSettings!

    override func setUpWithError() throws { settings = try freshPostgresSettings() }

    override func openStore() throws -> any GatewayStore { try PostgresStore(settings: settings) }

    override func storedPendingIds(_ store: any GatewayStore) throws -> [String] {
        try (store as? PostgresStore).map { try $0.pool.withConnection { try $0.query("SELECT id FROM oauth_pending ORDER BY id").compactMap { $0.text(0) } } } ?? []
    }

    // Linux's test discovery lists only a class's own methods: each inherited test is named again.
    override func testClientsRoundTripAndCachedDocumentsExpire() throws { try super.testClientsRoundTripAndCachedDocumentsExpire() }
    override func testRemovingAClientRevokesItsGrants() throws { try super.testRemovingAClientRevokesItsGrants() }
    override func testPendingAuthorizationIsTakenOnceAlsoFromAnotherProcess() throws { try super.testPendingAuthorizationIsTakenOnceAlsoFromAnotherProcess() }
    override func testCodeIsRedeemedOnceAndTheSecondRedemptionIsAReplay() throws { try super.testCodeIsRedeemedOnceAndTheSecondRedemptionIsAReplay() }
    override func testGrantsRoundTripWithLowerCaseIdsNewestFirst() throws { try super.testGrantsRoundTripWithLowerCaseIdsNewestFirst() }
    override func testRefreshTokenRotationIsCompareAndSet() throws { try super.testRefreshTokenRotationIsCompareAndSet() }
    override func testRevokingAGrantRetiresItsRefreshTokensAndCodes() throws { try super.testRevokingAGrantRetiresItsRefreshTokensAndCodes() }
    override func testPruningRemovesOnlyExpiredRows() throws { try super.testPruningRemovesOnlyExpiredRows() }
}

/// What only the PostgreSQL engine has: its schema under an advisory lock, the audit archive,
/// its settings' rules, the pool's timeouts, and a server that stops and comes back.
final class PostgresEngineTests: XCTestCase {
    func testFirstOpensMigrateOnceAndANewerSchemaIsRefused() throws {
        let settings = try freshPostgresSettings()
        // Four processes starting at once: one migrates under the lock, the others find it done.
        let errors = NSLock()
        var failures: [String] = []
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do { _ = try PostgresStore(settings: settings) } catch { errors.lock(); failures.append("\(error)"); errors.unlock() }
        }
        XCTAssertEqual(failures, [])
        let store = try PostgresStore(settings: settings)
        XCTAssertEqual(try store.schemaVersion, PostgresStore.knownSchemaVersion)
        try store.pool.withConnection { try $0.query("UPDATE mcp_fcgi_schema SET version = 99") }
        XCTAssertThrowsError(try PostgresStore(settings: settings)) { error in
            XCTAssertTrue("\(error)".contains("schema version 99, newer than this build knows"), "\(error)")
        }
    }

    func testArchiveIsIdempotentByRequestIdAndCompletedRecordsWin() throws {
        let store = try PostgresStore(settings: try freshPostgresSettings())
        let begun = StoreBehaviourTests.record("r1", time: 10, completed: false, status: 0)
        let done = StoreBehaviourTests.record("r1", time: 10, status: 200)
        try store.archiveAudit([begun, StoreBehaviourTests.record("r2", time: 11)])
        XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 10).map(\.completed), [false, true])
        // The same batch moved again after a crash, then the completion: one row each, completed.
        try store.archiveAudit([begun, StoreBehaviourTests.record("r2", time: 11)])
        try store.archiveAudit([done])
        try store.archiveAudit([begun])
        XCTAssertEqual(try store.audit(since: 0, tenant: nil, limit: 10), [done, StoreBehaviourTests.record("r2", time: 11)])
        // Begun and completed in one batch, and a batch larger than one statement's chunk.
        let many = (0..<2500).map { StoreBehaviourTests.record("m\($0)", time: 100 + Double($0)) }
        try store.archiveAudit([StoreBehaviourTests.record("r3", time: 12, completed: false)] + many + [StoreBehaviourTests.record("r3", time: 12)])
        try store.archiveAudit(many)
        let all = try store.audit(since: 0, tenant: nil, limit: 10_000)
        XCTAssertEqual(all.count, 2503)
        XCTAssertEqual(Set(all.map(\.requestId)).count, 2503)
        XCTAssertTrue(all.allSatisfy(\.completed))
    }

    func testSettingsRefuseAPasswordInTheURLAndPlainTextToARemoteHost() throws {
        XCTAssertThrowsError(try PostgresSettings(url: "postgresql://gw:secret@db.example/mcp")) { error in
            XCTAssertTrue("\(error)".contains("must not hold a password"))
            XCTAssertFalse("\(error)".contains("secret"), "the password is never echoed")
        }
        XCTAssertThrowsError(try PostgresSettings(url: "host=db.example dbname=mcp password=x"))
        XCTAssertThrowsError(try PostgresSettings(url: "host=db.example dbname=mcp sslmode=require")) { error in
            XCTAssertTrue("\(error)".contains("sslmode=require to db.example is refused"), "\(error)")
        }
        XCTAssertThrowsError(try PostgresSettings(url: "postgresql://db.example/mcp?sslmode=verify-ca"))
        XCTAssertThrowsError(try PostgresSettings(url: "host=/run/postgresql,db.example sslmode=disable"))
        XCTAssertThrowsError(try PostgresSettings(url: "host=db.example dbname=mcp port=nope x"))
        XCTAssertNoThrow(try PostgresSettings(url: "postgresql://gw@db.example/mcp"))
        XCTAssertNoThrow(try PostgresSettings(url: "host=/run/postgresql dbname=mcp sslmode=disable"))
        XCTAssertNoThrow(try PostgresSettings(url: "postgresql://gw@127.0.0.1:5432/mcp?sslmode=disable"))
        XCTAssertNoThrow(try PostgresSettings(url: "host=localhost dbname=mcp sslmode=prefer"))
        // A remote host without an sslmode gets verify-full.
        let remote = try PostgresSettings(url: "postgresql://gw@db.example/mcp")
        XCTAssertTrue(remote.connectionParameters.contains { $0 == ("sslmode", "verify-full") })
    }

    func testPasswordFileMustBePrivateAndOwned() throws {
        let dir = makeTempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/pgpass"
        try "s3cret\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o644)
        XCTAssertThrowsError(try PostgresSettings.readPasswordFile(path)) { XCTAssertTrue("\($0)".contains("chmod 600")) }
        chmod(path, 0o600)
        XCTAssertEqual(try PostgresSettings.readPasswordFile(path), "s3cret")
        XCTAssertThrowsError(try PostgresSettings.readPasswordFile(dir + "/missing"))
        if geteuid() == 0 {
            chown(path, 65534, 65534)
            XCTAssertThrowsError(try PostgresSettings.readPasswordFile(path)) { XCTAssertTrue("\($0)".contains("must be owned")) }
        }
    }

    func testABusyPoolAndASlowStatementFailWithinTheirBounds() throws {
        var settings = try freshPostgresSettings()
        settings.poolSize = 1
        settings.poolWaitMilliseconds = 300
        settings.statementTimeoutMilliseconds = 500
        let store = try PostgresStore(settings: settings)
        let holding = expectation(description: "the one connection is busy")
        let released = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = try? store.pool.withConnection { c in
                holding.fulfill()
                _ = try? c.query("SELECT pg_sleep(0.4)")
            }
            released.signal()
        }
        wait(for: [holding], timeout: 5)
        let start = Date()
        XCTAssertThrowsError(try store.take([RateBucket(key: "k", perMinute: 60, burst: 5)], now: 1)) { error in
            XCTAssertTrue("\(error)".contains("no free connection within 300 ms"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2, "the wait for a connection is bounded")
        released.wait()
        XCTAssertThrowsError(try store.pool.withConnection { try $0.query("SELECT pg_sleep(5)") }) { error in
            XCTAssertEqual((error as? PostgresError)?.isTimeout, true, "\(error)")
        }
        XCTAssertNil(try store.take([RateBucket(key: "k", perMinute: 60, burst: 5)], now: 1), "the connection is usable after a cancel")
    }

    func testAStoppedServerFailsFastAndARestartedOneIsUsedAgain() throws {
        let server = try TestPostgresServer()
        let store = try PostgresStore(settings: try PostgresSettings(url: try server.createDatabase()))
        let block = Block(kind: .user, id: "u1", until: nil, reason: "test")
        try store.addBlock(block)
        try server.stop()
        let start = Date()
        XCTAssertThrowsError(try store.activeBlock(matching: [(.user, "u1")], now: 1))
        XCTAssertThrowsError(try store.activeBlock(matching: [(.user, "u1")], now: 1), "no connection comes back by itself")
        XCTAssertThrowsError(try store.take([RateBucket(key: "k", perMinute: 60, burst: 5)], now: 1))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5, "a down server is an error at once, never a hang")
        try server.start()
        XCTAssertEqual(try store.activeBlock(matching: [(.user, "u1")], now: 1), block, "the same store reconnects")
        XCTAssertNil(try store.take([RateBucket(key: "k", perMinute: 60, burst: 5)], now: 1))
        // A restart between two calls: the idle connection it ended is replaced within the next call.
        try server.stop()
        try server.start()
        XCTAssertEqual(try store.activeBlock(matching: [(.user, "u1")], now: 1), block, "no call fails for a restart it did not see")
    }

    func testARoleWithoutWritePrivilegesIsReported() throws {
        let server = try TestPostgresServer.shared.get()
        let url = try server.createDatabase()
        let owner = try PostgresStore(settings: try PostgresSettings(url: url))
        XCTAssertEqual(try owner.missingPrivileges(), [])
        let database = url.split(separator: " ").first { $0.hasPrefix("dbname=") }!.dropFirst("dbname=".count)
        let role = "reader_" + database.suffix(8)
        try server.psql("CREATE ROLE \(role) LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(role);", database: String(database))
        let reader = try PostgresStore(settings: try PostgresSettings(url: url.replacingOccurrences(of: "user=postgres", with: "user=\(role)")))
        let missing = try reader.missingPrivileges()
        XCTAssertTrue(missing.contains("audit: INSERT"), "\(missing)")
        XCTAssertTrue(missing.contains("blocks: DELETE"), "\(missing)")
        XCTAssertTrue(missing.contains("api_keys: UPDATE") && missing.contains("token_introspections: INSERT"), "\(missing)")
        XCTAssertFalse(missing.contains { $0.hasSuffix(": SELECT") }, "\(missing)")
        XCTAssertThrowsError(try PostgresStore.inspect(settings: try PostgresSettings(url: url.replacingOccurrences(of: "user=postgres", with: "user=\(role)")))) {
            XCTAssertTrue("\($0)".contains("the role lacks"), "\($0)")
        }
    }

    func testCheckConfigInspectsWithoutMigratingAndDoctorProbes() throws {
        let url = try TestPostgresServer.shared.get().createDatabase()
        let settings = try PostgresSettings(url: url)
        XCTAssertTrue(try PostgresStore.inspect(settings: settings).contains("schema version 0, migrated to"))
        XCTAssertTrue(try PostgresStore.inspect(settings: settings).contains("schema version 0"), "inspecting changed nothing")
        let stateDir = makeTempDirectory()
        defer { try? FileManager.default.removeItem(atPath: stateDir) }
        let config = try ProcessConfig.parse(JSONObject(pairs: [
            ("server", ["public_url": "https://mcp.example.test/mcp"]), ("state_dir", .string(stateDir)),
            ("auth", ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x"]),
            ("store", ["engine": "postgres", "url": .string(url)]),
        ])).instances[0]
        let check = Doctor(config: config).store()
        XCTAssertEqual(check.outcome, .pass, check.detail)
        XCTAssertTrue(check.detail.contains("schema version \(PostgresStore.knownSchemaVersion), the role holds every privilege"), check.detail)
        XCTAssertTrue(try PostgresStore.inspect(settings: settings).contains("every privilege the gateway needs"))
    }
}

/// `store.engine` and its settings as the config reads them.
final class PostgresConfigTests: XCTestCase {
    let base: JSONObject = JSONObject(pairs: [
        ("server", ["public_url": "https://mcp.example.test/mcp"]),
        ("auth", ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x"]),
    ])

    func config(_ store: JSONValue) throws -> GatewayConfig {
        var root = base
        root["store"] = store
        return try ProcessConfig.parse(root).instances[0]
    }

    func problem(_ store: JSONValue) -> String {
        do { _ = try config(store); return "" } catch { return "\(error)" }
    }

    func testSQLiteIsTheDefaultAndPostgresTakesAURLAndLimits() throws {
        XCTAssertEqual(try config([:]).storeEngine, .sqlite)
        let c = try config(["engine": "postgres", "url": "postgresql://gw@db.example/mcp", "password_file": "/etc/mcp-fcgi/pg.pass",
                            "pool_size": 8, "statement_timeout_ms": 1500])
        guard case .postgres(let pg) = c.storeEngine else { return XCTFail("not postgres: \(c.storeEngine)") }
        XCTAssertEqual(pg.settings.poolSize, 8)
        XCTAssertEqual(pg.settings.statementTimeoutMilliseconds, 1500)
        XCTAssertEqual(pg.settings.connectTimeoutSeconds, 3)
        XCTAssertEqual(pg.passwordFile, "/etc/mcp-fcgi/pg.pass")
        XCTAssertEqual(c.storeLocation, "PostgreSQL postgresql://gw@db.example/mcp")
        XCTAssertFalse(InstanceBuilder.stateFiles(for: c).contains { $0.hasSuffix(".db") }, "no SQLite files to hand over")
    }

    func testEveryWrongStoreSettingIsNamed() {
        XCTAssertTrue(problem(["engine": "mysql"]).contains("store.engine"))
        XCTAssertTrue(problem(["engine": "postgres"]).contains("store.url"))
        XCTAssertTrue(problem(["engine": "postgres", "url": "postgresql://gw:pw@db.example/mcp"]).contains("must not hold a password"))
        XCTAssertFalse(problem(["engine": "postgres", "url": "postgresql://gw:pw@db.example/mcp"]).contains("pw@"))
        XCTAssertTrue(problem(["engine": "postgres", "url": "host=db.example sslmode=disable"]).contains("sslmode=disable to db.example is refused"))
        XCTAssertTrue(problem(["engine": "postgres", "url": "host=/run/postgresql", "path": "/var/lib/x.db"]).contains("store.path"))
        XCTAssertTrue(problem(["engine": "postgres", "url": "host=/run/postgresql", "password_file": "pg.pass"]).contains("store.password_file"))
        XCTAssertTrue(problem(["url": "host=/run/postgresql"]).contains("store.url"))
        XCTAssertTrue(problem(["engine": "postgres", "url": "host=/run/postgresql", "pool_size": 0]).contains("store.pool_size"))
    }
}

/// Two gateways, each with its own state directory as two hosts would have, on one PostgreSQL:
/// one limit, one block list, one audit trail; a server that stops answers 503, never a hang.
final class PostgresTwoHostTests: XCTestCase {
    func hosts(url: String, extra: [String: JSONValue] = [:]) throws -> (GatewayFixture, GatewayFixture) {
        var e = extra
        e["store"] = ["engine": "postgres", "url": .string(url)]
        return (try GatewayFixture(extra: e), try GatewayFixture(extra: e))
    }

    func testLimitBlocksAndAuditAreSharedByBothHosts() throws {
        let url = try TestPostgresServer.shared.get().createDatabase()
        let (a, b) = try hosts(url: url, extra: ["rate_limits": ["user_per_minute": 1, "user_burst": 3]])
        let ping = GatewayFixture.legacyBody("ping")
        let tokenA = try a.token(), tokenB = try b.token()
        XCTAssertEqual([a.post(ping, token: tokenA).status, b.post(ping, token: tokenB).status, a.post(ping, token: tokenA).status],
                       [200, 200, 200])
        XCTAssertEqual(b.post(ping, token: tokenB).status, 429, "the user's burst of 3 is spent across both hosts")

        let store = try PostgresStore(settings: try PostgresSettings(url: url))
        let bob = "22222222-2222-4222-8222-222222222222"
        let bobToken = try b.minter.mint(tenantId: GatewayFixture.tenant, objectId: bob, audience: GatewayFixture.audience, scopes: ["mcp.tools"])
        XCTAssertEqual(b.post(ping, token: bobToken).status, 200)
        try store.addBlock(Block(kind: .user, id: bob, until: nil, reason: "test"))  // as `mcp-fcgi block` on host a would
        XCTAssertEqual(b.post(ping, token: bobToken).status, 403, "blocked on the other host at once")

        // Each host's journal moved to the server (as a serving process does in the background and at exit).
        a.instance.stores.audit.endServing()
        b.instance.stores.audit.endServing()
        let trail = try store.audit(since: 0, tenant: nil, limit: 100).sorted { $0.time < $1.time }
        XCTAssertEqual(trail.map(\.httpStatus), [200, 200, 200, 429, 200, 403])
        XCTAssertEqual(Set(trail.map(\.requestId)).count, 6)
    }

    func testAStoppedServerMeans503WithRetryAfterAndARestartServesAgain() throws {
        let server = try TestPostgresServer()
        let url = try server.createDatabase()
        let (a, _) = try hosts(url: url)
        let ping = GatewayFixture.legacyBody("ping")
        let token = try a.token()
        XCTAssertEqual(a.post(ping, token: token).status, 200)
        try server.stop()
        let start = Date()
        let down = a.post(ping, token: token)
        XCTAssertEqual(down.status, 503)
        XCTAssertNotNil(down.header("Retry-After"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        try server.start()
        XCTAssertEqual(a.post(ping, token: token).status, 200, "the same process reconnects")
        // The refusal's record waited in the host's journal and reaches the server once it is back.
        a.instance.stores.audit.endServing()
        let trail = try PostgresStore(settings: try PostgresSettings(url: url)).audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.map(\.httpStatus).sorted(), [200, 200, 503])
    }
}

/// `mcp-fcgi store migrate`: a SQLite store copied into PostgreSQL, once.
final class PostgresMigrationTests: XCTestCase {
    func testEveryConcernIsCopiedOnceAndANonEmptyTargetIsRefused() throws {
        let dir = makeTempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = try SQLiteStore(path: dir + "/s.db")
        try source.addBlock(Block(kind: .user, id: "u1", until: nil, reason: "copied"))
        try source.appendAudit(StoreBehaviourTests.record("r1", time: 10))
        _ = try source.beginAudit(StoreBehaviourTests.record("r2", time: 11))  // an unfinished record is copied as it is
        try source.createSession(id: "s1", principal: "p1", now: Date().timeIntervalSince1970)
        let mapping = try WorkspaceMapping(tenant: Callers.tenant, kind: .user, principal: Callers.alice,
                                           workspace: "aaaaaaaa-0000-4000-8000-000000000001")
        try source.addMappings([mapping])
        let key = BackendSessionKey(instance: "default", tenant: Callers.tenant, user: Callers.alice, backend: "chat")
        try source.saveBackendSession(key, StoredBackendSession(sealed: [1, 2, 3], expiresAt: nil, checkedAt: 5), now: 5)
        try source.saveGrant(OAuthStoreTests.grant())
        try source.saveAuthorizationCode(OAuthStoreTests.code(OAuthStoreTests.digest("a")))
        _ = try source.redeemAuthorizationCode(sha256: OAuthStoreTests.digest("a"), now: 1001)
        try source.saveRefreshToken(OAuthStoreTests.refresh(OAuthStoreTests.digest("1")))
        let apiKey = APIKeyRecord(id: "k1", name: "export", tenant: Callers.tenant, roles: ["MCP.User"],
                                  hmac: String(repeating: "ab", count: 32), created: 5, expires: nil, revoked: 7)
        try source.addAPIKey(apiKey)
        let later = Int64(Date().timeIntervalSince1970) + 3600
        try source.saveIntrospection(provider: "github", tokenDigest: "d1", summary: "{}", expires: later, now: 0)

        let target = try PostgresStore(settings: try freshPostgresSettings())
        let copied = Dictionary(uniqueKeysWithValues: try target.copy(from: source, intoNonEmpty: false).map { ($0.table, $0.rows) })
        XCTAssertEqual(copied["audit"], 2)
        XCTAssertEqual(copied["oauth_grants"], 1)
        XCTAssertEqual(try target.blocks(now: 0).map(\.reason), ["copied"])
        XCTAssertEqual(try target.audit(since: 0, tenant: nil, limit: 10), try source.audit(since: 0, tenant: nil, limit: 10))
        XCTAssertTrue(try target.useSession(id: "s1", principal: "p1", now: Date().timeIntervalSince1970, idle: 60))
        XCTAssertEqual(try target.mappings(tenant: nil), [mapping])
        XCTAssertEqual(try target.backendSession(key), try source.backendSession(key))
        XCTAssertEqual(try target.grant(id: "g1"), OAuthStoreTests.grant())
        XCTAssertEqual(try target.redeemAuthorizationCode(sha256: OAuthStoreTests.digest("a"), now: 1002)?.alreadyUsed, true,
                       "a used code stays used")
        XCTAssertEqual(try target.refreshToken(sha256: OAuthStoreTests.digest("1")), OAuthStoreTests.refresh(OAuthStoreTests.digest("1")))
        XCTAssertEqual(try target.apiKey(id: "k1"), apiKey, "a revoked key stays revoked")
        XCTAssertEqual(try target.introspection(provider: "github", tokenDigest: "d1", now: later - 1), "{}")

        XCTAssertThrowsError(try target.copy(from: source, intoNonEmpty: false)) { XCTAssertTrue("\($0)".contains("already holds rows")) }
        let again = try target.copy(from: source, intoNonEmpty: true)
        XCTAssertEqual(again.map(\.rows).reduce(0, +), 0, "nothing is copied twice")
    }
}
