import FoundationEssentials
import GatewayStore
import MCPJSON

/// The authorization front's state. Whatever must happen once (a pending authorization taken,
/// a code redeemed, a refresh token rotated) is one conditional statement: under READ COMMITTED
/// a second writer waits for the first's row lock and re-checks the condition, so of two only
/// one succeeds, on any host.
extension PostgresStore: OAuthStore {
    // MARK: clients

    private static let clientColumns = "client_id, secret_sha256, metadata, source, created, expires"

    public func oauthClient(id: String, now: Double) throws -> OAuthClientRecord? {
        try pool.withConnection { c in
            try c.query("SELECT \(Self.clientColumns) FROM oauth_clients WHERE client_id = $1 AND (expires IS NULL OR expires > $2)",
                        [.text(id), .double(now)]).first.flatMap(Self.client)
        }
    }

    public func saveOAuthClient(_ cl: OAuthClientRecord) throws {
        try pool.withConnection { c in
            try c.query("""
                INSERT INTO oauth_clients (\(Self.clientColumns)) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (client_id) DO UPDATE SET secret_sha256 = excluded.secret_sha256, metadata = excluded.metadata,
                    source = excluded.source, created = excluded.created, expires = excluded.expires
                """, [.text(cl.clientId), .optional(cl.secretSHA256), .text(cl.metadataJSON), .text(cl.source.rawValue),
                      .double(cl.createdAt), .optional(cl.expiresAt)])
        }
    }

    /// Grants are revoked whether or not the client is still stored: a metadata document's
    /// cached copy may have been pruned while the grants it led to live on.
    public func removeOAuthClient(id: String) throws -> Bool {
        try pool.transaction { c in
            let removed = try c.query("DELETE FROM oauth_clients WHERE client_id = $1 RETURNING client_id", [.text(id)]).count
            try c.query("DELETE FROM oauth_pending WHERE client_id = $1", [.text(id)])
            let revoked = try Self.revokeGrants(c, where: "client_id = $2", [.text(id)], now: Date().timeIntervalSince1970)
            return removed + revoked > 0
        }
    }

    public func oauthClients() throws -> [OAuthClientRecord] {
        try pool.withConnection { c in
            try c.query("SELECT \(Self.clientColumns) FROM oauth_clients ORDER BY created, client_id").compactMap(Self.client)
        }
    }

    private static func client(_ r: PGRow) -> OAuthClientRecord? {
        guard let id = r.text(0), let metadata = r.text(2), let source = r.text(3).flatMap(OAuthClientSource.init(rawValue:)),
              let created = r.double(4) else { return nil }
        return OAuthClientRecord(clientId: id, secretSHA256: r.text(1), metadataJSON: metadata, source: source,
                                 createdAt: created, expiresAt: r.double(5))
    }

    // MARK: pending authorizations

    private static let pendingColumns = "id, client_id, payload, upstream_state, upstream_verifier, nonce, created, expires"

    public func savePendingAuthorization(_ p: PendingAuthorization) throws {
        let payload = JSONWriter.string([
            "redirect_uri": .string(p.redirectURI), "state": .string(p.clientState), "code_challenge": .string(p.codeChallenge),
            "scopes": JSONValue(p.scopes), "resource": JSONValue(p.resource),
        ])
        try pool.withConnection { c in
            try c.query("""
                INSERT INTO oauth_pending (\(Self.pendingColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id, payload = excluded.payload,
                    upstream_state = excluded.upstream_state, upstream_verifier = excluded.upstream_verifier, nonce = excluded.nonce,
                    created = excluded.created, expires = excluded.expires
                """, [.text(p.id), .text(p.clientId), .text(payload), .optional(p.upstreamState), .optional(p.upstreamVerifier),
                      .optional(p.nonce), .double(p.createdAt), .double(p.expiresAt)])
        }
    }

    public func pendingAuthorization(id: String, now: Double) throws -> PendingAuthorization? {
        try pool.withConnection { c in
            try c.query("SELECT \(Self.pendingColumns) FROM oauth_pending WHERE id = $1 AND expires > $2", [.text(id), .double(now)])
                .first.flatMap(Self.pending)
        }
    }

    public func takePendingAuthorization(upstreamState: String, now: Double) throws -> PendingAuthorization? {
        // Read and deleted in one statement: of two callbacks with the same state, one gets it.
        // An expired one is deleted all the same.
        try pool.withConnection { c in
            try c.query("DELETE FROM oauth_pending WHERE upstream_state = $1 RETURNING \(Self.pendingColumns)", [.text(upstreamState)])
                .first.flatMap(Self.pending).flatMap { $0.expiresAt > now ? $0 : nil }
        }
    }

    private static func pending(_ r: PGRow) -> PendingAuthorization? {
        guard let id = r.text(0), let clientId = r.text(1), let payload = r.text(2).flatMap({ try? JSONParser.parse($0) }),
              let redirectURI = payload["redirect_uri"]?.stringValue, let state = payload["state"]?.stringValue,
              let challenge = payload["code_challenge"]?.stringValue,
              let scopes = payload["scopes"]?.arrayValue?.compactMap(\.stringValue),
              let created = r.double(6), let expires = r.double(7) else { return nil }
        return PendingAuthorization(id: id, clientId: clientId, redirectURI: redirectURI, clientState: state, codeChallenge: challenge,
                                    scopes: scopes, resource: payload["resource"]?.stringValue, upstreamState: r.text(3),
                                    upstreamVerifier: r.text(4), nonce: r.text(5), createdAt: created, expiresAt: expires)
    }

    // MARK: authorization codes

    private static let codeColumns = "code_sha256, grant_id, client_id, redirect_uri, code_challenge, scopes, resource, sealed_access_token, access_token_expires, expires"

    public func saveAuthorizationCode(_ code: StoredAuthorizationCode) throws {
        // A plain INSERT: saving a code again must never reset its `used` flag.
        try pool.withConnection { c in
            try c.query("INSERT INTO oauth_codes (\(Self.codeColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        [.text(code.sha256), .text(code.grantId), .text(code.clientId), .text(code.redirectURI), .text(code.codeChallenge),
                         .text(Self.scopeList(code.scopes)), .optional(code.resource), .text(Base64.encode(code.sealedAccessToken)),
                         .double(code.accessTokenExpiresAt), .double(code.expiresAt)])
        }
    }

    public func redeemAuthorizationCode(sha256: String, now: Double) throws -> CodeRedemption? {
        try pool.withConnection { c in
            // Compare and set: only the redemption that turns `used` false to true gets the code fresh.
            if let first = try c.query("UPDATE oauth_codes SET used = true WHERE code_sha256 = $1 AND NOT used RETURNING \(Self.codeColumns)",
                                       [.text(sha256)]).first {
                return Self.code(first).map { CodeRedemption(code: $0, alreadyUsed: false) }
            }
            return try c.query("SELECT \(Self.codeColumns) FROM oauth_codes WHERE code_sha256 = $1", [.text(sha256)])
                .first.flatMap(Self.code).map { CodeRedemption(code: $0, alreadyUsed: true) }
        }
    }

    private static func code(_ r: PGRow) -> StoredAuthorizationCode? {
        guard let digest = r.text(0), let grantId = r.text(1), let clientId = r.text(2), let redirectURI = r.text(3),
              let challenge = r.text(4), let scopes = r.text(5), let sealed = r.text(7).flatMap({ Base64.decodeStandard(Array($0.utf8)) }),
              let accessExpires = r.double(8), let expires = r.double(9) else { return nil }
        return StoredAuthorizationCode(sha256: digest, grantId: grantId, clientId: clientId, redirectURI: redirectURI,
                                       codeChallenge: challenge, scopes: Self.scopes(scopes), resource: r.text(6),
                                       sealedAccessToken: sealed, accessTokenExpiresAt: accessExpires, expiresAt: expires)
    }

    // MARK: grants

    private static let grantColumns = "id, client_id, tenant, user_id, scopes, resource, sealed_refresh_token, created, updated, revoked"

    public func saveGrant(_ g: OAuthGrant) throws {
        try pool.withConnection { c in
            try c.query("INSERT INTO oauth_grants (\(Self.grantColumns)) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        [.text(g.id), .text(g.clientId), .text(g.tenant), .text(g.user), .text(Self.scopeList(g.scopes)),
                         .optional(g.resource), .text(Base64.encode(g.sealedRefreshToken)), .double(g.createdAt),
                         .double(g.updatedAt), .optional(g.revokedAt)])
        }
    }

    public func grant(id: String) throws -> OAuthGrant? {
        try pool.withConnection { c in
            try c.query("SELECT \(Self.grantColumns) FROM oauth_grants WHERE id = $1", [.text(id)]).first.flatMap(Self.grant)
        }
    }

    public func updateGrantUpstreamToken(id: String, sealedRefreshToken: [UInt8], now: Double) throws {
        try pool.withConnection { c in
            try c.query("UPDATE oauth_grants SET sealed_refresh_token = $1, updated = $2 WHERE id = $3 AND revoked IS NULL",
                        [.text(Base64.encode(sealedRefreshToken)), .double(now), .text(id)])
        }
    }

    public func revokeGrant(id: String, now: Double) throws -> Bool {
        try pool.transaction { c in try Self.revokeGrants(c, where: "id = $2", [.text(id)], now: now) == 1 }
    }

    public func revokeGrants(tenant: String, user: String, now: Double) throws -> Int {
        try pool.transaction { c in
            try Self.revokeGrants(c, where: "tenant = $2 AND user_id = $3", [.text(tenant.lowercased()), .text(user.lowercased())], now: now)
        }
    }

    public func grants(tenant: String?, user: String?) throws -> [OAuthGrant] {
        var sql = "SELECT \(Self.grantColumns) FROM oauth_grants WHERE revoked IS NULL"
        var params: [PGValue] = []
        if let tenant { params.append(.text(tenant.lowercased())); sql += " AND tenant = $\(params.count)" }
        if let user { params.append(.text(user.lowercased())); sql += " AND user_id = $\(params.count)" }
        return try pool.withConnection { c in
            try c.query(sql + " ORDER BY created DESC, id", params).compactMap(Self.grant)
        }
    }

    /// Revokes the live grants `condition` selects (its parameters from `$2`), inside the caller's
    /// transaction, and deletes their refresh tokens and codes. The grant rows stay locked until
    /// commit, so a refresh token saved meanwhile (`saveRefreshToken` locks its grant) waits and
    /// then finds the grant revoked. How many were revoked.
    private static func revokeGrants(_ c: PostgresConnection, where condition: String, _ params: [PGValue], now: Double) throws -> Int {
        let ids = try c.query("UPDATE oauth_grants SET revoked = $1 WHERE \(condition) AND revoked IS NULL RETURNING id",
                              [.double(now)] + params).compactMap { $0.text(0) }
        guard !ids.isEmpty else { return 0 }
        try c.query("DELETE FROM oauth_refresh_tokens WHERE grant_id = ANY($1::text[])", [.textArray(ids)])
        try c.query("DELETE FROM oauth_codes WHERE grant_id = ANY($1::text[])", [.textArray(ids)])
        return ids.count
    }

    private static func grant(_ r: PGRow) -> OAuthGrant? {
        guard let id = r.text(0), let clientId = r.text(1), let tenant = r.text(2), let user = r.text(3), let scopes = r.text(4),
              let sealed = r.text(6).flatMap({ Base64.decodeStandard(Array($0.utf8)) }),
              let created = r.double(7), let updated = r.double(8) else { return nil }
        return OAuthGrant(id: id, clientId: clientId, tenant: tenant, user: user, scopes: Self.scopes(scopes), resource: r.text(5),
                          sealedRefreshToken: sealed, createdAt: created, updatedAt: updated, revokedAt: r.double(9))
    }

    // MARK: refresh tokens

    private static let refreshColumns = "token_sha256, grant_id, created, expires, rotated"

    /// The grant is checked, and share-locked against a concurrent revocation, in the statement that stores the token.
    public func saveRefreshToken(_ t: StoredRefreshToken) throws {
        let stored = try pool.withConnection { c in
            try c.query("""
                INSERT INTO oauth_refresh_tokens (\(Self.refreshColumns))
                SELECT $1, id, $2, $3, $4::float8 FROM oauth_grants WHERE id = $5 AND revoked IS NULL FOR SHARE RETURNING token_sha256
                """, [.text(t.sha256), .double(t.createdAt), .double(t.expiresAt), .optional(t.rotatedAt), .text(t.grantId)]).count
        }
        guard stored == 1 else { throw StoreError("store: the refresh token's grant is unknown or revoked") }
    }

    public func refreshToken(sha256: String) throws -> StoredRefreshToken? {
        try pool.withConnection { c in
            try c.query("SELECT \(Self.refreshColumns) FROM oauth_refresh_tokens WHERE token_sha256 = $1", [.text(sha256)]).first.flatMap { r in
                guard let digest = r.text(0), let grantId = r.text(1), let created = r.double(2), let expires = r.double(3) else { return nil }
                return StoredRefreshToken(sha256: digest, grantId: grantId, createdAt: created, expiresAt: expires, rotatedAt: r.double(4))
            }
        }
    }

    public func markRefreshTokenRotated(sha256: String, now: Double) throws -> Bool {
        // Compare and set: of two refreshes with the same token, one rotates it.
        try pool.withConnection { c in
            try c.query("UPDATE oauth_refresh_tokens SET rotated = $1 WHERE token_sha256 = $2 AND rotated IS NULL AND expires > $1 RETURNING token_sha256",
                        [.double(now), .text(sha256)]).count == 1
        }
    }

    // MARK: pruning

    /// A grant with no code or refresh token left can never be used again; it goes a day after its last change.
    public func pruneOAuth(now: Double) throws {
        try pool.transaction { c in
            for table in ["oauth_pending", "oauth_codes", "oauth_refresh_tokens", "oauth_clients"] {
                try c.query("DELETE FROM \(table) WHERE expires <= $1", [.double(now)])
            }
            try c.query("""
                DELETE FROM oauth_grants WHERE greatest(updated, coalesce(revoked, 0)) < $1
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
