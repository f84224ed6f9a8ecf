import GatewayStore

/// API keys are read from the server on each use (one primary-key lookup), so a key revoked
/// on one host is refused on every host at the next request.
extension PostgresStore: APIKeyStore {
    public func addAPIKey(_ k: APIKeyRecord) throws {
        try pool.withConnection { c in
            try c.query("INSERT INTO api_keys (id, name, tenant, roles, hmac, created, expires, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        [.text(k.id), .text(k.name), .text(k.tenant), .text(k.roles.joined(separator: " ")), .text(k.hmac),
                         .int(k.created), k.expires.map { .int($0) } ?? .null, k.revoked.map { .int($0) } ?? .null])
        }
    }

    public func apiKey(id: String) throws -> APIKeyRecord? {
        try pool.withConnection { c in
            try c.query("SELECT \(Self.apiKeyColumns) FROM api_keys WHERE id = $1", [.text(id)]).compactMap(Self.apiKey).first
        }
    }

    public func apiKeys() throws -> [APIKeyRecord] {
        try pool.withConnection { c in
            try c.query("SELECT \(Self.apiKeyColumns) FROM api_keys ORDER BY created DESC, id").compactMap(Self.apiKey)
        }
    }

    public func revokeAPIKey(id: String, at time: Int64) throws -> Bool {
        try pool.withConnection { c in
            try c.query("UPDATE api_keys SET revoked = $1 WHERE id = $2 AND revoked IS NULL RETURNING id", [.int(time), .text(id)]).count > 0
        }
    }

    private static let apiKeyColumns = "id, name, tenant, roles, hmac, created, expires, revoked"

    private static func apiKey(_ r: PGRow) -> APIKeyRecord? {
        guard let id = r.text(0), let name = r.text(1), let tenant = r.text(2), let roles = r.text(3), let hmac = r.text(4),
              let created = r.int(5) else { return nil }
        return APIKeyRecord(id: id, name: name, tenant: tenant, roles: roles.split(separator: " ").map(String.init), hmac: hmac,
                            created: created, expires: r.int(6), revoked: r.int(7))
    }
}

/// Opaque-token verdicts shared by every host, keyed by the token's SHA-256 only.
extension PostgresStore: IntrospectionCache {
    public func introspection(provider: String, tokenDigest: String, now: Int64) throws -> String? {
        try pool.withConnection { c in
            try c.query("SELECT summary FROM token_introspections WHERE provider = $1 AND token_sha256 = $2 AND expires > $3",
                        [.text(provider), .text(tokenDigest), .int(now)]).first?.text(0)
        }
    }

    public func saveIntrospection(provider: String, tokenDigest: String, summary: String, expires: Int64, now: Int64) throws {
        try pool.transaction { c in
            try c.query("DELETE FROM token_introspections WHERE expires <= $1", [.int(now)])
            try c.query("""
                INSERT INTO token_introspections (provider, token_sha256, summary, expires) VALUES ($1, $2, $3, $4)
                ON CONFLICT (provider, token_sha256) DO UPDATE SET summary = excluded.summary, expires = excluded.expires
                """, [.text(provider), .text(tokenDigest), .text(summary), .int(expires)])
        }
    }
}
