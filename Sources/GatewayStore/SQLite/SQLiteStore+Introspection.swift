extension SQLiteStore: IntrospectionCache {
    public func introspection(provider: String, tokenDigest: String, now: Int64) throws -> String? {
        try db.transaction(write: false) { db in
            try db.query("SELECT summary FROM token_introspections WHERE provider = ? AND token_sha256 = ? AND expires > ?",
                         [.text(provider), .text(tokenDigest), .int(now)]).first?.first?.text
        }
    }

    public func saveIntrospection(provider: String, tokenDigest: String, summary: String, expires: Int64, now: Int64) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("DELETE FROM token_introspections WHERE expires <= ?", [.int(now)])
            try db.query("INSERT OR REPLACE INTO token_introspections (provider, token_sha256, summary, expires) VALUES (?, ?, ?, ?)",
                         [.text(provider), .text(tokenDigest), .text(summary), .int(expires)])
        }
    }
}
