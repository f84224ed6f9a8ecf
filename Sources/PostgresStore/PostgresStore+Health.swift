import GatewayStore

extension PostgresStore: StoreHealthCheck {
    /// The schema version read and the database's size, in one statement.
    public func health() throws -> StoreHealth {
        try pool.withConnection { c in
            guard try Self.schemaVersion(c) == Self.knownSchemaVersion else {
                throw StoreError("the PostgreSQL store's schema is not at version \(Self.knownSchemaVersion)")
            }
            return StoreHealth(bytes: try c.query("SELECT pg_database_size(current_database())").first?.int(0) ?? 0)
        }
    }

    public func probeWrite() throws {
        try pool.withConnection { c in try c.query("DELETE FROM rate_buckets WHERE key = ''") }
    }

    /// What `check-config` and `doctor` report: whether the role may do everything the gateway
    /// asks of each table (select, insert, update, delete) and run the rate-limit function.
    /// An empty list when it may.
    public func missingPrivileges() throws -> [String] {
        try pool.withConnection(Self.missingPrivileges)
    }

    static func missingPrivileges(_ c: PostgresConnection) throws -> [String] {
        var missing = try c.query("""
            SELECT t || ': ' || p FROM unnest($1::text[]) AS t, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) AS p
            WHERE NOT has_table_privilege(current_user, t, p) ORDER BY t, p
            """, [.textArray(Self.tables)]).compactMap { $0.text(0) }
        if try c.query("SELECT has_function_privilege(current_user, 'mcp_fcgi_take(text[], float8[], float8[], float8)', 'EXECUTE')")
            .first?.bool(0) != true {
            missing.append("mcp_fcgi_take: EXECUTE")
        }
        if try c.query("SELECT has_sequence_privilege(current_user, 'audit_seq_seq', 'USAGE')").first?.bool(0) != true {
            missing.append("audit_seq_seq: USAGE")
        }
        return missing
    }

    /// What `check-config` says of a server without changing it (no migration): that it answers,
    /// its schema version, and the privileges the role lacks once the schema is in place.
    public static func inspect(settings: PostgresSettings) throws -> String {
        let pool = PostgresPool(settings: settings)
        return try pool.withConnection { c in
            let version = try schemaVersion(c)
            if version > knownSchemaVersion {
                throw StoreError("the PostgreSQL store has schema version \(version), newer than this build knows (\(knownSchemaVersion))")
            }
            if version < knownSchemaVersion {
                return "connected; schema version \(version), migrated to \(knownSchemaVersion) when the gateway first opens it"
            }
            let missing = try missingPrivileges(c)
            guard missing.isEmpty else { throw StoreError("connected, but the role lacks \(missing.joined(separator: ", "))") }
            return "connected; schema version \(version); the role holds every privilege the gateway needs"
        }
    }

    static let tables = ["blocks", "rate_buckets", "audit", "sessions", "workspace_map", "backend_sessions", "oauth_clients",
                         "oauth_pending", "oauth_codes", "oauth_grants", "oauth_refresh_tokens", "api_keys", "token_introspections"]
}
