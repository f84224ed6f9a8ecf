import GatewayStore

/// `mcp-fcgi store migrate --to <url>`: a SQLite store copied into PostgreSQL, audit included.
/// Every row goes in with `ON CONFLICT DO NOTHING`, all tables in one transaction, so a second
/// run copies nothing twice and a failed one leaves nothing behind.
extension PostgresStore {
    /// A table as SQLite names its columns and as PostgreSQL does (`user` is reserved there).
    struct CopiedTable {
        let name: String
        let sqliteColumns: [String]
        var postgresColumns: [String] { sqliteColumns.map { $0 == "user" ? "user_id" : $0 } }
    }

    static let copiedTables: [CopiedTable] = [
        CopiedTable(name: "blocks", sqliteColumns: ["kind", "id", "until", "reason", "created"]),
        CopiedTable(name: "rate_buckets", sqliteColumns: ["key", "tokens", "updated"]),
        CopiedTable(name: "audit", sqliteColumns: ["time", "request_id", "instance", "tenant", "user", "client_app", "method", "tool",
                                                   "arguments_digest", "arguments", "decision", "reason", "http_status",
                                                   "upstream_status", "latency_ms", "completed"]),
        CopiedTable(name: "sessions", sqliteColumns: ["id", "principal", "last_used"]),
        CopiedTable(name: "workspace_map", sqliteColumns: ["tenant", "kind", "principal", "workspace"]),
        CopiedTable(name: "backend_sessions", sqliteColumns: ["instance", "tenant", "user", "backend", "sealed", "expires", "checked", "updated"]),
        CopiedTable(name: "oauth_clients", sqliteColumns: ["client_id", "secret_sha256", "metadata", "source", "created", "expires"]),
        CopiedTable(name: "oauth_pending", sqliteColumns: ["id", "client_id", "payload", "upstream_state", "upstream_verifier", "nonce",
                                                           "created", "expires"]),
        CopiedTable(name: "oauth_codes", sqliteColumns: ["code_sha256", "grant_id", "client_id", "redirect_uri", "code_challenge", "scopes",
                                                         "resource", "sealed_access_token", "access_token_expires", "expires", "used"]),
        CopiedTable(name: "oauth_grants", sqliteColumns: ["id", "client_id", "tenant", "user", "scopes", "resource", "sealed_refresh_token",
                                                          "created", "updated", "revoked"]),
        CopiedTable(name: "oauth_refresh_tokens", sqliteColumns: ["token_sha256", "grant_id", "created", "expires", "rotated"]),
        CopiedTable(name: "api_keys", sqliteColumns: ["id", "name", "tenant", "roles", "hmac", "created", "expires", "revoked"]),
        // Introspections are a cache, but the unexpired ones spare every host a provider call after the move.
        CopiedTable(name: "token_introspections", sqliteColumns: ["provider", "token_sha256", "summary", "expires"]),
    ]

    /// Rows copied per table. Refuses a target that already holds rows unless `intoNonEmpty`.
    public func copy(from source: SQLiteStore, intoNonEmpty: Bool) throws -> [(table: String, rows: Int)] {
        try pool.transaction { c in
            if !intoNonEmpty {
                let filled = try Self.copiedTables.filter { t in
                    try c.query("SELECT EXISTS (SELECT 1 FROM \(t.name))").first?.bool(0) == true
                }
                guard filled.isEmpty else {
                    throw StoreError("the PostgreSQL store already holds rows (\(filled.map(\.name).joined(separator: ", "))); " +
                                     "pass --into-non-empty to add what is missing")
                }
            }
            var copied: [(String, Int)] = []
            for t in Self.copiedTables {
                let rows = try source.exportRows(table: t.name, columns: t.sqliteColumns)
                var inserted = 0
                let width = t.sqliteColumns.count
                let perStatement = 60_000 / width
                for start in stride(from: 0, to: rows.count, by: perStatement) {
                    let chunk = rows[start..<min(start + perStatement, rows.count)]
                    let values = (0..<chunk.count).map { r in
                        "(" + (1...width).map { "$\(r * width + $0)" }.joined(separator: ", ") + ")"
                    }.joined(separator: ", ")
                    inserted += try c.query("""
                        INSERT INTO \(t.name) (\(t.postgresColumns.joined(separator: ", "))) VALUES \(values)
                        ON CONFLICT DO NOTHING RETURNING 1
                        """, chunk.flatMap { $0.map(PGValue.optional) }).count
                }
                copied.append((t.name, inserted))
            }
            return copied
        }
    }
}
