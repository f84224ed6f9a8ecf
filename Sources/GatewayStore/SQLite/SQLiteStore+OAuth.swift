import FoundationEssentials
import MCPJSON

/// The authorization front's state. Whatever must happen once (a pending authorization taken,
/// a code redeemed, a refresh token rotated, a grant revoked) is one statement or one
/// `BEGIN IMMEDIATE` transaction, so it happens once across every process sharing the file.
extension SQLiteStore: OAuthStore {
    // MARK: clients

    private static let clientColumns = "client_id, secret_sha256, metadata, source, created, expires"

    public func oauthClient(id: String, now: Double) throws -> OAuthClientRecord? {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(Self.clientColumns) FROM oauth_clients WHERE client_id = ? AND (expires IS NULL OR expires > ?)",
                         [.text(id), .double(now)]).first.flatMap(Self.client)
        }
    }

    public func saveOAuthClient(_ c: OAuthClientRecord) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("INSERT OR REPLACE INTO oauth_clients (\(Self.clientColumns)) VALUES (?, ?, ?, ?, ?, ?)",
                         [.text(c.clientId), .optional(c.secretSHA256), .text(c.metadataJSON), .text(c.source.rawValue),
                          .double(c.createdAt), .optional(c.expiresAt)])
        }
    }

    /// Grants are revoked whether or not the client is still stored: a metadata document's
    /// cached copy may have been pruned while the grants it led to live on.
    public func removeOAuthClient(id: String) throws -> Bool {
        try db.transaction(write: true) { db in
            let removed = try db.query("DELETE FROM oauth_clients WHERE client_id = ? RETURNING client_id", [.text(id)]).count
            try db.query("DELETE FROM oauth_pending WHERE client_id = ?", [.text(id)])
            let revoked = try Self.revokeGrants(db, where: "client_id = ?", [.text(id)], now: Date().timeIntervalSince1970)
            return removed + revoked > 0
        }
    }

    public func oauthClients() throws -> [OAuthClientRecord] {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(Self.clientColumns) FROM oauth_clients ORDER BY created, client_id").compactMap(Self.client)
        }
    }

    private static func client(_ r: [SQLiteDatabase.Value]) -> OAuthClientRecord? {
        guard let id = r[0].text, let metadata = r[2].text, let source = r[3].text.flatMap(OAuthClientSource.init(rawValue:)),
              let created = r[4].double else { return nil }
        return OAuthClientRecord(clientId: id, secretSHA256: r[1].text, metadataJSON: metadata, source: source,
                                 createdAt: created, expiresAt: r[5].double)
    }

    // MARK: pending authorizations

    private static let pendingColumns = "id, client_id, payload, upstream_state, upstream_verifier, nonce, created, expires"

    /// Saved again once the user has consented, now with the upstream state.
    public func savePendingAuthorization(_ p: PendingAuthorization) throws {
        // The client's request as one JSON value: it is only ever read back whole.
        let payload = JSONWriter.string([
            "redirect_uri": .string(p.redirectURI), "state": .string(p.clientState), "code_challenge": .string(p.codeChallenge),
            "scopes": JSONValue(p.scopes), "resource": JSONValue(p.resource),
        ])
        _ = try db.transaction(write: true) { db in
            try db.query("INSERT OR REPLACE INTO oauth_pending (\(Self.pendingColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [.text(p.id), .text(p.clientId), .text(payload), .optional(p.upstreamState), .optional(p.upstreamVerifier),
                          .optional(p.nonce), .double(p.createdAt), .double(p.expiresAt)])
        }
    }

    public func pendingAuthorization(id: String, now: Double) throws -> PendingAuthorization? {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(Self.pendingColumns) FROM oauth_pending WHERE id = ? AND expires > ?", [.text(id), .double(now)])
                .first.flatMap(Self.pending)
        }
    }

    public func takePendingAuthorization(upstreamState: String, now: Double) throws -> PendingAuthorization? {
        // Read and deleted in one statement: of two callbacks with the same state, one gets it.
        // An expired one is deleted all the same.
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM oauth_pending WHERE upstream_state = ? RETURNING \(Self.pendingColumns)", [.text(upstreamState)])
                .first.flatMap(Self.pending).flatMap { $0.expiresAt > now ? $0 : nil }
        }
    }

    private static func pending(_ r: [SQLiteDatabase.Value]) -> PendingAuthorization? {
        guard let id = r[0].text, let clientId = r[1].text, let payload = r[2].text.flatMap({ try? JSONParser.parse($0) }),
              let redirectURI = payload["redirect_uri"]?.stringValue, let state = payload["state"]?.stringValue,
              let challenge = payload["code_challenge"]?.stringValue,
              let scopes = payload["scopes"]?.arrayValue?.compactMap(\.stringValue),
              let created = r[6].double, let expires = r[7].double else { return nil }
        return PendingAuthorization(id: id, clientId: clientId, redirectURI: redirectURI, clientState: state, codeChallenge: challenge,
                                    scopes: scopes, resource: payload["resource"]?.stringValue, upstreamState: r[3].text,
                                    upstreamVerifier: r[4].text, nonce: r[5].text, createdAt: created, expiresAt: expires)
    }

    // MARK: authorization codes

    private static let codeColumns = "code_sha256, grant_id, client_id, redirect_uri, code_challenge, scopes, resource, sealed_access_token, access_token_expires, expires"

    public func saveAuthorizationCode(_ c: StoredAuthorizationCode) throws {
        // A plain INSERT: saving a code again must never reset its `used` flag.
        _ = try db.transaction(write: true) { db in
            try db.query("INSERT INTO oauth_codes (\(Self.codeColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [.text(c.sha256), .text(c.grantId), .text(c.clientId), .text(c.redirectURI), .text(c.codeChallenge),
                          .text(Self.scopeList(c.scopes)), .optional(c.resource), .text(Base64.encode(c.sealedAccessToken)),
                          .double(c.accessTokenExpiresAt), .double(c.expiresAt)])
        }
    }

    /// The caller refuses an expired code; it is still marked used here, so that a replay is
    /// told apart until pruning removes it (`now` is not needed for that).
    public func redeemAuthorizationCode(sha256: String, now: Double) throws -> CodeRedemption? {
        try db.transaction(write: true) { db in
            // Compare and set: only the redemption that turns `used` from 0 to 1 gets the code fresh.
            if let first = try db.query("UPDATE oauth_codes SET used = 1 WHERE code_sha256 = ? AND used = 0 RETURNING \(Self.codeColumns)",
                                        [.text(sha256)]).first {
                return Self.code(first).map { CodeRedemption(code: $0, alreadyUsed: false) }
            }
            return try db.query("SELECT \(Self.codeColumns) FROM oauth_codes WHERE code_sha256 = ?", [.text(sha256)])
                .first.flatMap(Self.code).map { CodeRedemption(code: $0, alreadyUsed: true) }
        }
    }

    private static func code(_ r: [SQLiteDatabase.Value]) -> StoredAuthorizationCode? {
        guard let digest = r[0].text, let grantId = r[1].text, let clientId = r[2].text, let redirectURI = r[3].text,
              let challenge = r[4].text, let scopes = r[5].text, let sealed = r[7].text.flatMap({ Base64.decodeStandard(Array($0.utf8)) }),
              let accessExpires = r[8].double, let expires = r[9].double else { return nil }
        return StoredAuthorizationCode(sha256: digest, grantId: grantId, clientId: clientId, redirectURI: redirectURI,
                                       codeChallenge: challenge, scopes: Self.scopes(scopes), resource: r[6].text,
                                       sealedAccessToken: sealed, accessTokenExpiresAt: accessExpires, expiresAt: expires)
    }

    // MARK: grants

    private static let grantColumns = "id, client_id, tenant, user, scopes, resource, sealed_refresh_token, created, updated, revoked"

    /// A plain INSERT: a grant is stored once, so saving it again can never undo a revocation.
    public func saveGrant(_ g: OAuthGrant) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("INSERT INTO oauth_grants (\(Self.grantColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [.text(g.id), .text(g.clientId), .text(g.tenant), .text(g.user), .text(Self.scopeList(g.scopes)),
                          .optional(g.resource), .text(Base64.encode(g.sealedRefreshToken)), .double(g.createdAt),
                          .double(g.updatedAt), .optional(g.revokedAt)])
        }
    }

    public func grant(id: String) throws -> OAuthGrant? {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(Self.grantColumns) FROM oauth_grants WHERE id = ?", [.text(id)]).first.flatMap(Self.grant)
        }
    }

    public func updateGrantUpstreamToken(id: String, sealedRefreshToken: [UInt8], now: Double) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("UPDATE oauth_grants SET sealed_refresh_token = ?, updated = ? WHERE id = ? AND revoked IS NULL",
                         [.text(Base64.encode(sealedRefreshToken)), .double(now), .text(id)])
        }
    }

    public func revokeGrant(id: String, now: Double) throws -> Bool {
        try db.transaction(write: true) { db in try Self.revokeGrants(db, where: "id = ?", [.text(id)], now: now) == 1 }
    }

    public func revokeGrants(tenant: String, user: String, now: Double) throws -> Int {
        try db.transaction(write: true) { db in
            try Self.revokeGrants(db, where: "tenant = ? AND user = ?", [.text(tenant.lowercased()), .text(user.lowercased())], now: now)
        }
    }

    public func grants(tenant: String?, user: String?) throws -> [OAuthGrant] {
        var sql = "SELECT \(Self.grantColumns) FROM oauth_grants WHERE revoked IS NULL"
        var params: [SQLiteDatabase.Value] = []
        if let tenant { sql += " AND tenant = ?"; params.append(.text(tenant.lowercased())) }
        if let user { sql += " AND user = ?"; params.append(.text(user.lowercased())) }
        return try db.transaction(write: false) { db in
            try db.query(sql + " ORDER BY created DESC, id", params).compactMap(Self.grant)
        }
    }

    /// Revokes the live grants `condition` selects, inside the caller's write transaction, and
    /// deletes their refresh tokens and codes: nothing issued under a revoked grant is found again,
    /// whatever the caller goes on to check. How many were revoked.
    private static func revokeGrants(_ db: SQLiteDatabase, where condition: String, _ params: [SQLiteDatabase.Value],
                                     now: Double) throws -> Int {
        let ids = try db.query("UPDATE oauth_grants SET revoked = ? WHERE \(condition) AND revoked IS NULL RETURNING id",
                               [.double(now)] + params).compactMap { $0.first?.text }
        for id in ids {
            try db.query("DELETE FROM oauth_refresh_tokens WHERE grant_id = ?", [.text(id)])
            try db.query("DELETE FROM oauth_codes WHERE grant_id = ?", [.text(id)])
        }
        return ids.count
    }

    private static func grant(_ r: [SQLiteDatabase.Value]) -> OAuthGrant? {
        guard let id = r[0].text, let clientId = r[1].text, let tenant = r[2].text, let user = r[3].text, let scopes = r[4].text,
              let sealed = r[6].text.flatMap({ Base64.decodeStandard(Array($0.utf8)) }),
              let created = r[7].double, let updated = r[8].double else { return nil }
        return OAuthGrant(id: id, clientId: clientId, tenant: tenant, user: user, scopes: Self.scopes(scopes), resource: r[5].text,
                          sealedRefreshToken: sealed, createdAt: created, updatedAt: updated, revokedAt: r[9].double)
    }

    // MARK: refresh tokens

    private static let refreshColumns = "token_sha256, grant_id, created, expires, rotated"

    /// The grant is checked in the same statement that stores the token.
    public func saveRefreshToken(_ t: StoredRefreshToken) throws {
        let stored = try db.transaction(write: true) { db in
            try db.query("""
                INSERT INTO oauth_refresh_tokens (\(Self.refreshColumns))
                SELECT ?, id, ?, ?, ? FROM oauth_grants WHERE id = ? AND revoked IS NULL RETURNING token_sha256
                """, [.text(t.sha256), .double(t.createdAt), .double(t.expiresAt), .optional(t.rotatedAt), .text(t.grantId)]).count
        }
        guard stored == 1 else { throw StoreError("store: the refresh token's grant is unknown or revoked") }
    }

    public func refreshToken(sha256: String) throws -> StoredRefreshToken? {
        try db.transaction(write: false) { db in
            try db.query("SELECT \(Self.refreshColumns) FROM oauth_refresh_tokens WHERE token_sha256 = ?", [.text(sha256)]).first.flatMap { r in
                guard let digest = r[0].text, let grantId = r[1].text, let created = r[2].double, let expires = r[3].double else { return nil }
                return StoredRefreshToken(sha256: digest, grantId: grantId, createdAt: created, expiresAt: expires, rotatedAt: r[4].double)
            }
        }
    }

    public func markRefreshTokenRotated(sha256: String, now: Double) throws -> Bool {
        // Compare and set: of two refreshes with the same token, one rotates it.
        try db.transaction(write: true) { db in
            try db.query("UPDATE oauth_refresh_tokens SET rotated = ? WHERE token_sha256 = ? AND rotated IS NULL AND expires > ? RETURNING token_sha256",
                         [.double(now), .text(sha256), .double(now)]).count == 1
        }
    }

    // MARK: pruning

    /// A grant with no code or refresh token left can never be used again; it goes a day after
    /// its last change, so one stored a moment before its first code is never taken for dead.
    public func pruneOAuth(now: Double) throws {
        try db.transaction(write: true) { db in
            for table in ["oauth_pending", "oauth_codes", "oauth_refresh_tokens", "oauth_clients"] {
                try db.query("DELETE FROM \(table) WHERE expires <= ?", [.double(now)])
            }
            try db.query("""
                DELETE FROM oauth_grants WHERE max(updated, coalesce(revoked, 0)) < ?
                    AND NOT EXISTS (SELECT 1 FROM oauth_refresh_tokens WHERE grant_id = oauth_grants.id)
                    AND NOT EXISTS (SELECT 1 FROM oauth_codes WHERE grant_id = oauth_grants.id)
                """, [.double(now - 86_400)])
        }
    }

    // MARK: values

    /// Scopes as OAuth writes them (RFC 6749 §3.3: a scope never holds a space).
    private static func scopeList(_ scopes: [String]) -> String { scopes.joined(separator: " ") }
    private static func scopes(_ list: String) -> [String] { list.split(separator: " ").map(String.init) }
}
