import FoundationEssentials
import GatewayStore

/// Every shared concern on PostgreSQL, for sites whose hosts share one truth: each process
/// keeps a small pool of connections (`PostgresPool`); every statement takes parameters,
/// never spliced values. Each concern lives in its own extension, `PostgresStore+<concern>.swift`.
public final class PostgresStore: @unchecked Sendable {
    let pool: PostgresPool

    /// Any fixed number, the same for every build: the advisory lock one process holds while it migrates.
    static let migrationLockKey: Int64 = 0x6d63_702d_6663_6769  // "mcp-fcgi"

    /// Each entry upgrades the schema by one version; never edit a released one.
    static let migrations: [String] = [
        """
        CREATE TABLE blocks (kind text NOT NULL, id text NOT NULL, until bigint, reason text, created bigint NOT NULL,
                             PRIMARY KEY (kind, id));
        CREATE TABLE rate_buckets (key text PRIMARY KEY, tokens double precision NOT NULL, updated double precision NOT NULL);
        CREATE TABLE audit (seq bigserial PRIMARY KEY, time double precision NOT NULL, request_id text NOT NULL UNIQUE,
                            instance text, tenant text, user_id text, client_app text, method text, tool text,
                            arguments_digest text, arguments text, decision text NOT NULL, reason text,
                            http_status integer NOT NULL, upstream_status integer, latency_ms double precision NOT NULL,
                            completed boolean NOT NULL DEFAULT true);
        CREATE INDEX audit_time ON audit (time);
        CREATE INDEX audit_tenant_time ON audit (tenant, time);
        CREATE TABLE sessions (id text PRIMARY KEY, principal text NOT NULL, last_used double precision NOT NULL);
        CREATE INDEX sessions_last_used ON sessions (last_used);
        CREATE TABLE workspace_map (tenant text NOT NULL, kind text NOT NULL CHECK (kind IN ('user', 'group')),
                                    principal text NOT NULL, workspace text NOT NULL,
                                    PRIMARY KEY (tenant, kind, principal, workspace));
        CREATE TABLE backend_sessions (instance text NOT NULL, tenant text NOT NULL, user_id text NOT NULL, backend text NOT NULL,
                                       sealed text NOT NULL, expires double precision, checked double precision NOT NULL,
                                       updated double precision NOT NULL, PRIMARY KEY (instance, tenant, user_id, backend));
        CREATE TABLE oauth_clients (client_id text PRIMARY KEY, secret_sha256 text, metadata text NOT NULL,
                                    source text NOT NULL CHECK (source IN ('registered', 'metadata_document')),
                                    created double precision NOT NULL, expires double precision);
        CREATE TABLE oauth_pending (id text PRIMARY KEY, client_id text NOT NULL, payload text NOT NULL,
                                    upstream_state text UNIQUE, upstream_verifier text, nonce text,
                                    created double precision NOT NULL, expires double precision NOT NULL);
        CREATE INDEX oauth_pending_expires ON oauth_pending (expires);
        CREATE TABLE oauth_codes (code_sha256 text PRIMARY KEY, grant_id text NOT NULL, client_id text NOT NULL,
                                  redirect_uri text NOT NULL, code_challenge text NOT NULL, scopes text NOT NULL, resource text,
                                  sealed_access_token text NOT NULL, access_token_expires double precision NOT NULL,
                                  expires double precision NOT NULL, used boolean NOT NULL DEFAULT false);
        CREATE INDEX oauth_codes_grant ON oauth_codes (grant_id);
        CREATE TABLE oauth_grants (id text PRIMARY KEY, client_id text NOT NULL, tenant text NOT NULL, user_id text NOT NULL,
                                   scopes text NOT NULL, resource text, sealed_refresh_token text NOT NULL,
                                   created double precision NOT NULL, updated double precision NOT NULL, revoked double precision);
        CREATE INDEX oauth_grants_user ON oauth_grants (tenant, user_id);
        CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
        CREATE TABLE oauth_refresh_tokens (token_sha256 text PRIMARY KEY, grant_id text NOT NULL, created double precision NOT NULL,
                                           expires double precision NOT NULL, rotated double precision);
        CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
        -- Every bucket of a request in one call, all or none: missing rows are made full, the rows are
        -- locked in key order (two requests sharing buckets never deadlock), then refilled and taken
        -- from only if each has a token. Returns NULL when allowed, else the seconds until each has one.
        CREATE FUNCTION mcp_fcgi_take(keys text[], per_minute double precision[], burst double precision[],
                                      now double precision) RETURNS double precision LANGUAGE plpgsql AS $$
        DECLARE
            wait double precision;
        BEGIN
            INSERT INTO rate_buckets (key, tokens, updated)
                SELECT k, b, now FROM unnest(keys, burst) AS i(k, b) ORDER BY k ON CONFLICT (key) DO NOTHING;
            PERFORM 1 FROM rate_buckets WHERE key = ANY(keys) ORDER BY key FOR UPDATE;
            SELECT max(CASE WHEN lvl < 1 THEN (1 - lvl) * 60 / pm ELSE 0 END) INTO wait FROM (
                SELECT least(i.b, r.tokens + greatest(0, now - r.updated) * i.pm / 60) AS lvl, i.pm
                FROM unnest(keys, per_minute, burst) AS i(k, pm, b) JOIN rate_buckets r ON r.key = i.k) AS levels;
            IF wait > 0 THEN
                RETURN wait;
            END IF;
            UPDATE rate_buckets r SET tokens = least(i.b, r.tokens + greatest(0, now - r.updated) * i.pm / 60) - 1, updated = now
                FROM unnest(keys, per_minute, burst) AS i(k, pm, b) WHERE r.key = i.k;
            RETURN NULL;
        END $$;
        """,
        // API keys (a keyed hash only) and opaque-token verdicts (by the token's SHA-256 only), as SQLite keeps them.
        """
        CREATE TABLE api_keys (id text PRIMARY KEY, name text NOT NULL, tenant text NOT NULL, roles text NOT NULL,
                               hmac text NOT NULL, created bigint NOT NULL, expires bigint, revoked bigint);
        CREATE TABLE token_introspections (provider text NOT NULL, token_sha256 text NOT NULL, summary text NOT NULL,
                                           expires bigint NOT NULL, PRIMARY KEY (provider, token_sha256));
        CREATE INDEX token_introspections_expires ON token_introspections (expires);
        """,
    ]

    /// Connects (checking the server answers) and brings the schema up to date: the first process
    /// to find it old migrates under `pg_advisory_lock`; the others wait for it and find it current.
    /// A schema newer than this build knows is refused.
    public init(settings: PostgresSettings) throws {
        pool = PostgresPool(settings: settings)
        try pool.withConnection { c in
            let known = Int64(Self.migrations.count)
            guard try Self.schemaVersion(c) != known else { return }
            try c.query("SELECT pg_advisory_lock($1)", [.int(Self.migrationLockKey)])
            defer { _ = try? c.query("SELECT pg_advisory_unlock($1)", [.int(Self.migrationLockKey)]) }
            let current = try Self.schemaVersion(c)
            guard current <= known else {
                throw StoreError("the PostgreSQL store has schema version \(current), newer than this build knows (\(known))")
            }
            for (i, sql) in Self.migrations.enumerated().dropFirst(Int(current)) {
                try c.transaction { c in
                    try c.query("CREATE TABLE IF NOT EXISTS mcp_fcgi_schema (version integer NOT NULL)")
                    try c.execute(sql)
                    try c.query("DELETE FROM mcp_fcgi_schema")
                    try c.query("INSERT INTO mcp_fcgi_schema (version) VALUES ($1)", [.int(Int64(i + 1))])
                }
            }
        }
    }

    /// 0 for an empty database.
    static func schemaVersion(_ c: PostgresConnection) throws -> Int64 {
        guard try c.query("SELECT to_regclass('mcp_fcgi_schema') IS NOT NULL").first?.bool(0) == true else { return 0 }
        return try c.query("SELECT max(version) FROM mcp_fcgi_schema").first?.int(0) ?? 0
    }

    public var schemaVersion: Int64 {
        get throws { try pool.withConnection { try Self.schemaVersion($0) } }
    }

    public static var knownSchemaVersion: Int64 { Int64(migrations.count) }
}
