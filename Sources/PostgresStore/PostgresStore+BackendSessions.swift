import GatewayStore
import MCPJSON

/// Sessions arrive sealed (AES-256-GCM, by the caller) and are stored as base64: the server
/// never sees a backend's cookies.
extension PostgresStore: BackendSessionStore {
    private static func keyParameters(_ k: BackendSessionKey) -> [PGValue] {
        [.text(k.instance), .text(k.tenant), .text(k.user), .text(k.backend)]
    }

    public func backendSession(_ k: BackendSessionKey) throws -> StoredBackendSession? {
        try pool.withConnection { c in
            guard let r = try c.query("SELECT sealed, expires, checked FROM backend_sessions WHERE instance = $1 AND tenant = $2 AND user_id = $3 AND backend = $4",
                                      Self.keyParameters(k)).first,
                  let sealed = r.text(0).flatMap({ Base64.decodeStandard(Array($0.utf8)) }) else { return nil }
            return StoredBackendSession(sealed: sealed, expiresAt: r.double(1), checkedAt: r.double(2) ?? 0)
        }
    }

    public func saveBackendSession(_ k: BackendSessionKey, _ s: StoredBackendSession, now: Double) throws {
        try pool.transaction { c in
            try c.query("""
                INSERT INTO backend_sessions (instance, tenant, user_id, backend, sealed, expires, checked, updated) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                ON CONFLICT (instance, tenant, user_id, backend) DO UPDATE SET sealed = excluded.sealed, expires = excluded.expires,
                    checked = excluded.checked, updated = excluded.updated
                """, Self.keyParameters(k) + [.text(Base64.encode(s.sealed)), .optional(s.expiresAt), .double(s.checkedAt), .double(now)])
            // Sessions long expired or unused for a month are swept as new ones are stored.
            try c.query("DELETE FROM backend_sessions WHERE expires < $1 OR updated < $2", [.double(now - 86_400), .double(now - 30 * 86_400)])
        }
    }

    public func markBackendSessionChecked(_ k: BackendSessionKey, sealed: [UInt8], at: Double) throws {
        try pool.withConnection { c in
            try c.query("UPDATE backend_sessions SET checked = $5 WHERE instance = $1 AND tenant = $2 AND user_id = $3 AND backend = $4 AND sealed = $6",
                        Self.keyParameters(k) + [.double(at), .text(Base64.encode(sealed))])
        }
    }

    public func deleteBackendSession(_ k: BackendSessionKey) throws -> Bool {
        try pool.withConnection { c in
            try c.query("DELETE FROM backend_sessions WHERE instance = $1 AND tenant = $2 AND user_id = $3 AND backend = $4 RETURNING user_id",
                        Self.keyParameters(k)).count == 1
        }
    }
}
