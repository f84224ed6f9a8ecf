import MCPJSON

extension SQLiteStore: BackendSessionStore {
    public func backendSession(_ k: BackendSessionKey) throws -> StoredBackendSession? {
        try db.transaction(write: false) { db in
            guard let r = try db.query("SELECT sealed, expires, checked FROM backend_sessions WHERE instance = ? AND tenant = ? AND user = ? AND backend = ?",
                                       [.text(k.instance), .text(k.tenant), .text(k.user), .text(k.backend)]).first,
                  let sealed = r[0].text.flatMap({ Base64.decodeStandard(Array($0.utf8)) }) else { return nil }
            return StoredBackendSession(sealed: sealed, expiresAt: r[1].double, checkedAt: r[2].double ?? 0)
        }
    }

    public func saveBackendSession(_ k: BackendSessionKey, _ s: StoredBackendSession, now: Double) throws {
        try db.transaction(write: true) { db in
            try db.query("""
                INSERT INTO backend_sessions (instance, tenant, user, backend, sealed, expires, checked, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (instance, tenant, user, backend) DO UPDATE SET sealed = excluded.sealed, expires = excluded.expires,
                    checked = excluded.checked, updated = excluded.updated
                """, [.text(k.instance), .text(k.tenant), .text(k.user), .text(k.backend), .text(Base64.encode(s.sealed)),
                      s.expiresAt.map { .double($0) } ?? .null, .double(s.checkedAt), .double(now)])
            // Sessions long expired or unused for a month are swept as new ones are stored.
            try db.query("DELETE FROM backend_sessions WHERE expires < ? OR updated < ?", [.double(now - 86_400), .double(now - 30 * 86_400)])
        }
    }

    public func markBackendSessionChecked(_ k: BackendSessionKey, sealed: [UInt8], at: Double) throws {
        try db.transaction(write: true) { db in
            _ = try db.query("UPDATE backend_sessions SET checked = ? WHERE instance = ? AND tenant = ? AND user = ? AND backend = ? AND sealed = ?",
                         [.double(at), .text(k.instance), .text(k.tenant), .text(k.user), .text(k.backend), .text(Base64.encode(sealed))])
        }
    }

    public func deleteBackendSession(_ k: BackendSessionKey) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM backend_sessions WHERE instance = ? AND tenant = ? AND user = ? AND backend = ? RETURNING user",
                         [.text(k.instance), .text(k.tenant), .text(k.user), .text(k.backend)]).count == 1
        }
    }
}
