import Foundation
@testable import GatewayStore
import XCTest

/// The authorization front's state, with two handles on one store standing in for two worker
/// processes (or two hosts): what must happen once happens once between them. Run on SQLite
/// here and on PostgreSQL by `PostgresOAuthStoreTests`, which overrides `openStore`.
class OAuthStoreTests: XCTestCase {
    var dir: String!
    var path: String { dir + "/s.db" }

    override func setUp() {
        dir = NSTemporaryDirectory() + "mcp-fcgi-oauth-store-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func openStore() throws -> any GatewayStore { try SQLiteStore(path: path) }

    /// The ids of every stored pending authorization, expired or not.
    func storedPendingIds(_ store: any GatewayStore) throws -> [String] {
        try (store as! SQLiteStore).db.transaction(write: false) { try $0.query("SELECT id FROM oauth_pending").compactMap { $0.first?.text } }
    }

    static func digest(_ c: Character) -> String { String(repeating: c, count: 64) }

    static func pending(id: String = "p1", clientId: String = "mcpc_1", expiresAt: Double = 1600) -> PendingAuthorization {
        PendingAuthorization(id: id, clientId: clientId, redirectURI: "http://127.0.0.1:3118/callback?x=1", clientState: "st\u{e4}te \"1\"",
                             codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scopes: ["api://a/mcp.tools", "mcp.read"],
                             resource: nil, createdAt: 1000, expiresAt: expiresAt)
    }

    static func grant(id: String = "g1", clientId: String = "mcpc_1", tenant: String = "72F988BF-86F1-41AF-91AB-2D7CD011DB47",
                      user: String = "AAAAAAAA-1111-4111-8111-111111111111", createdAt: Double = 1000) -> OAuthGrant {
        OAuthGrant(id: id, clientId: clientId, tenant: tenant, user: user, scopes: ["api://a/mcp.tools"], resource: "https://h.example/mcp",
                   sealedRefreshToken: [1, 0, 255, 7], createdAt: createdAt, updatedAt: createdAt)
    }

    static func code(_ digest: String, grantId: String = "g1", expiresAt: Double = 1060) -> StoredAuthorizationCode {
        StoredAuthorizationCode(sha256: digest, grantId: grantId, clientId: "mcpc_1", redirectURI: "https://claude.ai/api/mcp/auth_callback",
                                codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", scopes: ["api://a/mcp.tools"],
                                resource: "https://h.example/mcp", sealedAccessToken: Array(0...40), accessTokenExpiresAt: 4600,
                                expiresAt: expiresAt)
    }

    static func refresh(_ digest: String, grantId: String = "g1", expiresAt: Double = 9000) -> StoredRefreshToken {
        StoredRefreshToken(sha256: digest, grantId: grantId, createdAt: 1000, expiresAt: expiresAt)
    }

    /// Runs `body` `times` times at once, alternating between the stores; how many returned true.
    static func race(_ stores: [any GatewayStore], times: Int = 16, _ body: @escaping @Sendable (any GatewayStore) throws -> Bool) -> Int {
        let lock = NSLock()
        var wins = 0
        DispatchQueue.concurrentPerform(iterations: times) { i in
            if (try? body(stores[i % stores.count])) == true { lock.lock(); wins += 1; lock.unlock() }
        }
        return wins
    }

    // MARK: clients

    func testClientsRoundTripAndCachedDocumentsExpire() throws {
        let a = try openStore(), b = try openStore()
        let registered = OAuthClientRecord(clientId: "mcpc_0123456789abcdef0123456789abcdef", secretSHA256: Self.digest("c"),
                                           metadataJSON: #"{"client_name":"Claude","redirect_uris":["https://claude.ai/cb"]}"#,
                                           source: .registered, createdAt: 1000, expiresAt: nil)
        let document = OAuthClientRecord(clientId: "https://app.example/client.json", secretSHA256: nil,
                                         metadataJSON: #"{"client_name":"App"}"#, source: .metadataDocument, createdAt: 900, expiresAt: 4500)
        try a.saveOAuthClient(registered)
        try a.saveOAuthClient(document)
        XCTAssertEqual(try b.oauthClient(id: registered.clientId, now: 1e9), registered, "a registration does not expire")
        XCTAssertEqual(try b.oauthClient(id: document.clientId, now: 4499), document)
        XCTAssertNil(try b.oauthClient(id: document.clientId, now: 4500), "a cached document past its lifetime is fetched again")
        XCTAssertNil(try b.oauthClient(id: "mcpc_unknown", now: 1000))
        XCTAssertEqual(try b.oauthClients(), [document, registered], "oldest first")

        var refetched = document
        refetched.metadataJSON = #"{"client_name":"App 2"}"#
        refetched.expiresAt = 9000
        try b.saveOAuthClient(refetched)
        XCTAssertEqual(try a.oauthClient(id: document.clientId, now: 5000), refetched, "a document fetched again replaces the old copy")
        XCTAssertEqual(try a.oauthClients().count, 2)
    }

    func testRemovingAClientRevokesItsGrants() throws {
        let a = try openStore(), b = try openStore()
        try a.saveOAuthClient(OAuthClientRecord(clientId: "mcpc_1", secretSHA256: nil, metadataJSON: "{}", source: .registered,
                                                createdAt: 1000, expiresAt: nil))
        try a.saveGrant(Self.grant(id: "g1"))
        try a.saveGrant(Self.grant(id: "g2"))
        try a.saveGrant(Self.grant(id: "other", clientId: "mcpc_2"))
        try a.saveRefreshToken(Self.refresh(Self.digest("1"), grantId: "g1"))
        try a.saveRefreshToken(Self.refresh(Self.digest("2"), grantId: "other"))
        try a.savePendingAuthorization(Self.pending(id: "p1", clientId: "mcpc_1"))
        try a.savePendingAuthorization(Self.pending(id: "p2", clientId: "mcpc_2"))

        XCTAssertTrue(try b.removeOAuthClient(id: "mcpc_1"))
        XCTAssertNil(try a.oauthClient(id: "mcpc_1", now: 1000))
        XCTAssertNotNil(try a.grant(id: "g1")?.revokedAt)
        XCTAssertNotNil(try a.grant(id: "g2")?.revokedAt)
        XCTAssertNil(try a.refreshToken(sha256: Self.digest("1")))
        XCTAssertNil(try a.pendingAuthorization(id: "p1", now: 1000), "its sign-ins in progress go too")
        XCTAssertEqual(try a.grants(tenant: nil, user: nil).map(\.id), ["other"], "another client's grant stays")
        XCTAssertNotNil(try a.refreshToken(sha256: Self.digest("2")))
        XCTAssertNotNil(try a.pendingAuthorization(id: "p2", now: 1000))
        XCTAssertFalse(try b.removeOAuthClient(id: "mcpc_1"), "nothing left to remove")

        // A metadata-document client whose cached copy was pruned still loses its grants.
        XCTAssertTrue(try b.removeOAuthClient(id: "mcpc_2"))
        XCTAssertEqual(try a.grants(tenant: nil, user: nil), [])
    }

    // MARK: pending authorizations

    func testPendingAuthorizationIsTakenOnceAlsoFromAnotherProcess() throws {
        let a = try openStore(), b = try openStore()
        var pending = Self.pending()
        try a.savePendingAuthorization(pending)
        XCTAssertEqual(try b.pendingAuthorization(id: "p1", now: 1000), pending)
        XCTAssertNil(try b.takePendingAuthorization(upstreamState: "s", now: 1000), "no upstream state before consent")

        pending.resource = "https://h.example/mcp"
        pending.upstreamState = "upstream-state"
        pending.upstreamVerifier = "verifier"
        pending.nonce = "nonce"
        try a.savePendingAuthorization(pending)  // consented: saved again with the Entra leg's values
        XCTAssertEqual(try b.pendingAuthorization(id: "p1", now: 1000), pending)
        XCTAssertEqual(try b.takePendingAuthorization(upstreamState: "upstream-state", now: 1001), pending)
        XCTAssertNil(try a.takePendingAuthorization(upstreamState: "upstream-state", now: 1001), "taken once only")
        XCTAssertNil(try a.pendingAuthorization(id: "p1", now: 1001))

        var late = Self.pending(id: "p2", expiresAt: 1600)
        late.upstreamState = "late"
        try a.savePendingAuthorization(late)
        XCTAssertNil(try b.pendingAuthorization(id: "p2", now: 1600))
        XCTAssertNil(try b.takePendingAuthorization(upstreamState: "late", now: 1600), "expired")

        // Many callbacks with the same state at once, from two processes: one gets it.
        var raced = Self.pending(id: "p3")
        raced.upstreamState = "raced"
        try a.savePendingAuthorization(raced)
        XCTAssertEqual(Self.race([a, b]) { try $0.takePendingAuthorization(upstreamState: "raced", now: 1001) != nil }, 1)
    }

    // MARK: codes

    func testCodeIsRedeemedOnceAndTheSecondRedemptionIsAReplay() throws {
        let a = try openStore(), b = try openStore()
        let code = Self.code(Self.digest("a"))
        try a.saveAuthorizationCode(code)
        XCTAssertEqual(try b.redeemAuthorizationCode(sha256: code.sha256, now: 1001), CodeRedemption(code: code, alreadyUsed: false))
        XCTAssertEqual(try a.redeemAuthorizationCode(sha256: code.sha256, now: 1002), CodeRedemption(code: code, alreadyUsed: true))
        XCTAssertEqual(try b.redeemAuthorizationCode(sha256: code.sha256, now: 1003)?.alreadyUsed, true)
        XCTAssertNil(try a.redeemAuthorizationCode(sha256: Self.digest("0"), now: 1001))
        XCTAssertThrowsError(try a.saveAuthorizationCode(code), "a code is stored once: saving again cannot reset it")
        XCTAssertEqual(try b.redeemAuthorizationCode(sha256: code.sha256, now: 1004)?.alreadyUsed, true)

        var bare = Self.code(Self.digest("b"))
        bare.resource = nil
        bare.scopes = []
        try a.saveAuthorizationCode(bare)
        XCTAssertEqual(try b.redeemAuthorizationCode(sha256: bare.sha256, now: 1001)?.code, bare)

        try a.saveAuthorizationCode(Self.code(Self.digest("c")))
        XCTAssertEqual(Self.race([a, b]) { try $0.redeemAuthorizationCode(sha256: Self.digest("c"), now: 1001)?.alreadyUsed == false }, 1)
    }

    // MARK: grants and refresh tokens

    func testGrantsRoundTripWithLowerCaseIdsNewestFirst() throws {
        let a = try openStore(), b = try openStore()
        let first = Self.grant(id: "g1", createdAt: 1000)
        XCTAssertEqual(first.tenant, "72f988bf-86f1-41af-91ab-2d7cd011db47")
        try a.saveGrant(first)
        XCTAssertEqual(try b.grant(id: "g1"), first)
        XCTAssertNil(try b.grant(id: "g0"))

        var second = Self.grant(id: "g2", createdAt: 2000)
        second.resource = nil
        second.sealedRefreshToken = []  // Entra gave no refresh token
        try a.saveGrant(second)
        try a.saveGrant(Self.grant(id: "g3", user: "bbbbbbbb-2222-4222-8222-222222222222", createdAt: 3000))
        XCTAssertEqual(try b.grant(id: "g2"), second)
        XCTAssertEqual(try b.grants(tenant: nil, user: nil).map(\.id), ["g3", "g2", "g1"])
        XCTAssertEqual(try b.grants(tenant: "72F988BF-86F1-41AF-91AB-2D7CD011DB47", user: "AAAAAAAA-1111-4111-8111-111111111111").map(\.id),
                       ["g2", "g1"])
        XCTAssertEqual(try b.grants(tenant: nil, user: "bbbbbbbb-2222-4222-8222-222222222222").map(\.id), ["g3"])
        XCTAssertEqual(try b.grants(tenant: "0b7e9c39-8f15-4a5e-9a57-2f5c2e1f4d11", user: nil), [])

        try b.updateGrantUpstreamToken(id: "g1", sealedRefreshToken: [9, 9], now: 1500)
        var updated = first
        updated.sealedRefreshToken = [9, 9]
        updated.updatedAt = 1500
        XCTAssertEqual(try a.grant(id: "g1"), updated, "Entra's rotated refresh token replaces the sealed one")
    }

    func testRefreshTokenRotationIsCompareAndSet() throws {
        let a = try openStore(), b = try openStore()
        try a.saveGrant(Self.grant())
        let token = Self.refresh(Self.digest("r"))
        try a.saveRefreshToken(token)
        XCTAssertEqual(try b.refreshToken(sha256: token.sha256), token)
        XCTAssertNil(try b.refreshToken(sha256: Self.digest("0")))

        // Two processes refresh with the same token at once: exactly one rotates it.
        XCTAssertEqual(Self.race([a, b]) { try $0.markRefreshTokenRotated(sha256: token.sha256, now: 2000) }, 1)
        var rotated = token
        rotated.rotatedAt = 2000
        XCTAssertEqual(try a.refreshToken(sha256: token.sha256), rotated, "kept, so a late use is told from a replay")
        XCTAssertFalse(try b.markRefreshTokenRotated(sha256: token.sha256, now: 2001), "only a current token rotates")
        XCTAssertFalse(try b.markRefreshTokenRotated(sha256: Self.digest("0"), now: 2001))

        try a.saveRefreshToken(Self.refresh(Self.digest("e"), expiresAt: 3000))
        XCTAssertFalse(try b.markRefreshTokenRotated(sha256: Self.digest("e"), now: 3000), "an expired token does not rotate")
        XCTAssertThrowsError(try a.saveRefreshToken(Self.refresh(Self.digest("u"), grantId: "unknown")))
    }

    func testRevokingAGrantRetiresItsRefreshTokensAndCodes() throws {
        let a = try openStore(), b = try openStore()
        try a.saveGrant(Self.grant(id: "g1"))
        try a.saveGrant(Self.grant(id: "g2"))
        try a.saveRefreshToken(Self.refresh(Self.digest("1"), grantId: "g1"))
        try a.saveRefreshToken(Self.refresh(Self.digest("2"), grantId: "g1"))
        try a.saveRefreshToken(Self.refresh(Self.digest("3"), grantId: "g2"))
        try a.saveAuthorizationCode(Self.code(Self.digest("c"), grantId: "g1"))

        XCTAssertTrue(try b.revokeGrant(id: "g1", now: 2000))
        XCTAssertFalse(try a.revokeGrant(id: "g1", now: 2001), "already revoked")
        XCTAssertFalse(try a.revokeGrant(id: "unknown", now: 2001))
        XCTAssertEqual(try a.grant(id: "g1")?.revokedAt, 2000)
        XCTAssertThrowsError(try a.saveGrant(Self.grant(id: "g1")), "saving a grant again cannot undo its revocation")
        XCTAssertEqual(try a.grant(id: "g1")?.revokedAt, 2000)
        XCTAssertNil(try a.refreshToken(sha256: Self.digest("1")))
        XCTAssertNil(try a.refreshToken(sha256: Self.digest("2")))
        XCTAssertFalse(try a.markRefreshTokenRotated(sha256: Self.digest("1"), now: 2001))
        XCTAssertNil(try a.redeemAuthorizationCode(sha256: Self.digest("c"), now: 1001), "its code is gone too")
        XCTAssertThrowsError(try a.saveRefreshToken(Self.refresh(Self.digest("4"), grantId: "g1")),
                             "a token rotated while the grant is revoked elsewhere is not stored")
        try a.updateGrantUpstreamToken(id: "g1", sealedRefreshToken: [5], now: 2002)
        XCTAssertEqual(try a.grant(id: "g1")?.sealedRefreshToken, [1, 0, 255, 7], "a revoked grant is not refreshed upstream")
        XCTAssertEqual(try a.grants(tenant: nil, user: nil).map(\.id), ["g2"])
        XCTAssertNotNil(try a.refreshToken(sha256: Self.digest("3")), "another grant's tokens stay")

        // Every grant of one user, named in any case.
        try a.saveGrant(Self.grant(id: "g3", user: "bbbbbbbb-2222-4222-8222-222222222222"))
        XCTAssertEqual(try b.revokeGrants(tenant: "72F988BF-86F1-41AF-91AB-2D7CD011DB47", user: "AAAAAAAA-1111-4111-8111-111111111111",
                                          now: 3000), 1)
        XCTAssertNil(try a.refreshToken(sha256: Self.digest("3")))
        XCTAssertEqual(try a.grants(tenant: nil, user: nil).map(\.id), ["g3"])
        XCTAssertEqual(try b.revokeGrants(tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", user: "aaaaaaaa-1111-4111-8111-111111111111",
                                          now: 3001), 0)
    }

    // MARK: pruning

    func testPruningRemovesOnlyExpiredRows() throws {
        let s = try openStore()
        let now = 100_000.0
        try s.saveOAuthClient(OAuthClientRecord(clientId: "mcpc_1", secretSHA256: nil, metadataJSON: "{}", source: .registered,
                                                createdAt: 1, expiresAt: nil))
        for (id, expires) in [("https://old.example/c", now), ("https://new.example/c", now + 1)] {
            try s.saveOAuthClient(OAuthClientRecord(clientId: id, secretSHA256: nil, metadataJSON: "{}", source: .metadataDocument,
                                                    createdAt: 1, expiresAt: expires))
        }
        var old = Self.pending(id: "old", expiresAt: now)
        old.upstreamState = "old"
        try s.savePendingAuthorization(old)
        try s.savePendingAuthorization(Self.pending(id: "new", expiresAt: now + 1))
        // g1: live tokens; g2: only expired ones, untouched for over a day; g3: just stored, no code yet.
        try s.saveGrant(Self.grant(id: "g1", createdAt: 1))
        try s.saveGrant(Self.grant(id: "g2", createdAt: 1))
        try s.saveGrant(Self.grant(id: "g3", createdAt: now - 5))
        try s.saveAuthorizationCode(Self.code(Self.digest("a"), grantId: "g1", expiresAt: now))
        try s.saveAuthorizationCode(Self.code(Self.digest("b"), grantId: "g1", expiresAt: now + 1))
        try s.saveRefreshToken(Self.refresh(Self.digest("1"), grantId: "g1", expiresAt: now))
        try s.saveRefreshToken(Self.refresh(Self.digest("2"), grantId: "g1", expiresAt: now + 1))
        try s.saveRefreshToken(Self.refresh(Self.digest("3"), grantId: "g2", expiresAt: now - 1))

        try s.pruneOAuth(now: now)

        XCTAssertEqual(try s.oauthClients().map(\.clientId).sorted(), ["https://new.example/c", "mcpc_1"])
        let pending = try storedPendingIds(s)
        XCTAssertEqual(pending, ["new"])
        XCTAssertNil(try s.redeemAuthorizationCode(sha256: Self.digest("a"), now: now))
        XCTAssertEqual(try s.redeemAuthorizationCode(sha256: Self.digest("b"), now: now)?.alreadyUsed, false)
        XCTAssertNil(try s.refreshToken(sha256: Self.digest("1")))
        XCTAssertNotNil(try s.refreshToken(sha256: Self.digest("2")))
        XCTAssertNil(try s.refreshToken(sha256: Self.digest("3")))
        XCTAssertEqual(try s.grants(tenant: nil, user: nil).map(\.id), ["g3", "g1"], "a grant nothing can use any more goes")
    }

}

/// SQLite's own schema history.
final class SQLiteOAuthStoreSchemaTests: XCTestCase {
    var dir: String!
    var path: String { dir + "/s.db" }

    override func setUp() {
        dir = NSTemporaryDirectory() + "mcp-fcgi-oauth-schema-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testAStoreOfThePreviousSchemaIsMigrated() throws {
        // A database as the build before the OAuth front left it, with a row in it.
        let previous = SQLiteStore.migrations.count - 1
        do {
            let old = try SQLiteDatabase(path: path)
            try old.transaction(write: true) { db in
                for (i, sql) in SQLiteStore.migrations.prefix(previous).enumerated() {
                    try db.execute(sql)
                    try db.execute("PRAGMA user_version = \(i + 1)")
                }
                try db.execute("INSERT INTO sessions (id, principal, last_used) VALUES ('s1', 'p1', 1000)")
            }
        }
        let s = try SQLiteStore(path: path)
        let version = try s.db.transaction(write: false) { try $0.query("PRAGMA user_version").first?.first?.int }
        XCTAssertEqual(version, Int64(SQLiteStore.migrations.count))
        XCTAssertTrue(try s.useSession(id: "s1", principal: "p1", now: 1001, idle: 60), "what was there stays")
        try s.saveGrant(OAuthStoreTests.grant())
        XCTAssertEqual(try SQLiteStore(path: path).grant(id: "g1"), OAuthStoreTests.grant())
    }
}
