/// SQLite in WAL mode with versioned migrations: one database file serves every concern
/// (each in its own extension, `SQLiteStore+<concern>.swift`).
public final class SQLiteStore: @unchecked Sendable {
    let db: SQLiteDatabase
    let blockCache: BlockCache

    /// Each entry upgrades the schema by one version; never edit a released one.
    static let migrations: [String] = [
        """
        CREATE TABLE blocks (kind TEXT NOT NULL, id TEXT NOT NULL, until INTEGER, reason TEXT,
                             created INTEGER NOT NULL, PRIMARY KEY (kind, id));
        CREATE TABLE rate_buckets (key TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL);
        """,
        """
        CREATE TABLE audit (seq INTEGER PRIMARY KEY, time REAL NOT NULL, request_id TEXT NOT NULL, tenant TEXT,
                            user TEXT, client_app TEXT, method TEXT, tool TEXT, arguments_digest TEXT, arguments TEXT,
                            decision TEXT NOT NULL, reason TEXT, http_status INTEGER NOT NULL, upstream_status INTEGER,
                            latency_ms REAL NOT NULL);
        CREATE INDEX audit_time ON audit (time);
        CREATE INDEX audit_tenant_time ON audit (tenant, time);
        """,
        """
        CREATE TABLE sessions (id TEXT PRIMARY KEY, principal TEXT NOT NULL, last_used REAL NOT NULL);
        """,
        """
        CREATE TABLE workspace_map (tenant TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
                                    principal TEXT NOT NULL, workspace TEXT NOT NULL,
                                    PRIMARY KEY (tenant, kind, principal, workspace));
        """,
        """
        ALTER TABLE audit ADD COLUMN instance TEXT;
        """,
        """
        CREATE TABLE backend_sessions (instance TEXT NOT NULL, tenant TEXT NOT NULL, user TEXT NOT NULL, backend TEXT NOT NULL,
                                       sealed TEXT NOT NULL, expires REAL, checked REAL NOT NULL, updated REAL NOT NULL,
                                       PRIMARY KEY (instance, tenant, user, backend));
        """,
        // The OAuth authorization front (OAuthStore): digests of our codes, refresh tokens and
        // client secrets; Entra's tokens sealed (base64); times in Unix seconds.
        """
        CREATE TABLE oauth_clients (client_id TEXT PRIMARY KEY, secret_sha256 TEXT, metadata TEXT NOT NULL,
                                    source TEXT NOT NULL CHECK (source IN ('registered', 'metadata_document')),
                                    created REAL NOT NULL, expires REAL);
        CREATE INDEX oauth_clients_expires ON oauth_clients (expires) WHERE expires IS NOT NULL;
        CREATE TABLE oauth_pending (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, payload TEXT NOT NULL,
                                    upstream_state TEXT UNIQUE, upstream_verifier TEXT, nonce TEXT,
                                    created REAL NOT NULL, expires REAL NOT NULL);
        CREATE INDEX oauth_pending_expires ON oauth_pending (expires);
        CREATE TABLE oauth_codes (code_sha256 TEXT PRIMARY KEY, grant_id TEXT NOT NULL, client_id TEXT NOT NULL,
                                  redirect_uri TEXT NOT NULL, code_challenge TEXT NOT NULL, scopes TEXT NOT NULL, resource TEXT,
                                  sealed_access_token TEXT NOT NULL, access_token_expires REAL NOT NULL, expires REAL NOT NULL,
                                  used INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX oauth_codes_grant ON oauth_codes (grant_id);
        CREATE INDEX oauth_codes_expires ON oauth_codes (expires);
        CREATE TABLE oauth_grants (id TEXT PRIMARY KEY, client_id TEXT NOT NULL, tenant TEXT NOT NULL, user TEXT NOT NULL,
                                   scopes TEXT NOT NULL, resource TEXT, sealed_refresh_token TEXT NOT NULL,
                                   created REAL NOT NULL, updated REAL NOT NULL, revoked REAL);
        CREATE INDEX oauth_grants_user ON oauth_grants (tenant, user);
        CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
        CREATE TABLE oauth_refresh_tokens (token_sha256 TEXT PRIMARY KEY, grant_id TEXT NOT NULL, created REAL NOT NULL,
                                           expires REAL NOT NULL, rotated REAL);
        CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
        CREATE INDEX oauth_refresh_tokens_expires ON oauth_refresh_tokens (expires);
        """,
        // A tool call's record is written before the tool runs and completed after it.
        """
        ALTER TABLE audit ADD COLUMN completed INTEGER NOT NULL DEFAULT 1;
        """,
        // Service-to-service API keys (APIKeyStore): only a keyed hash of each key; times in Unix seconds.
        """
        CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, tenant TEXT NOT NULL, roles TEXT NOT NULL,
                               hmac TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER, revoked INTEGER);
        """,
        // Opaque-token verdicts (IntrospectionCache), by the token's SHA-256 only.
        """
        CREATE TABLE token_introspections (provider TEXT NOT NULL, token_sha256 TEXT NOT NULL, summary TEXT NOT NULL,
                                           expires INTEGER NOT NULL, PRIMARY KEY (provider, token_sha256));
        CREATE INDEX token_introspections_expires ON token_introspections (expires);
        """,
        // Records moved over from the audit journals in batches: a batch moved twice changes nothing.
        // Request ids are random, so none should repeat; one that does keeps every row, renamed.
        """
        UPDATE audit SET request_id = request_id || '#' || seq
        WHERE seq NOT IN (SELECT max(seq) FROM audit GROUP BY request_id);
        CREATE UNIQUE INDEX audit_request_id ON audit (request_id);
        """,
        // A request's records (begun and completed) carry the time it was received, so (time, request_id)
        // names the request as well, and in the order rows arrive: each batch touches the index's last
        // pages instead of one random page per row (random request ids: at a million rows a row cost
        // 2.4 times the CPU and 3.7 times the wall clock). It also serves the time ranges audit_time did.
        """
        DROP INDEX audit_request_id;
        DROP INDEX audit_time;
        CREATE UNIQUE INDEX audit_time_request_id ON audit (time, request_id);
        """,
    ]

    /// The files a store at `path` consists of: the database, SQLite's write-ahead log and its
    /// shared-memory index, and the marker whose change tells every process to reread the blocks.
    public static func files(atPath path: String) -> [String] {
        [path, path + "-wal", path + "-shm", blocksMarkerPath(path), SharedBucketTable.path(besideStore: path)]
    }

    static func blocksMarkerPath(_ path: String) -> String { path + ".blocks" }

    /// `durable: false` is for the serving processes (see `SQLiteDatabase`). `blockSignal` tells
    /// every process that the blocks changed: the generation in the shared-memory table beside
    /// the database, opened here when not given. The marker file is still replaced on every change,
    /// for processes of an older build that watch it. `busyTimeoutMilliseconds`: how long a
    /// statement waits for another process's lock before it fails (`SQLiteBusyWait`).
    public init(path: String, durable: Bool = true, blockSignal: BlockChangeSignal? = nil,
                busyTimeoutMilliseconds: Int32 = 5000) throws {
        db = try SQLiteDatabase(path: path, durable: durable, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
        let signal = try blockSignal ?? SharedBucketTable(path: SharedBucketTable.path(besideStore: path))
        blockCache = BlockCache(signal: signal, markerPath: Self.blocksMarkerPath(path))
        let known = Int64(Self.migrations.count)
        let version = try db.transaction(write: false) { db in try db.query("PRAGMA user_version").first?.first?.int ?? 0 }
        guard version <= known else {
            throw StoreError("the store \(path) has schema version \(version), newer than this build knows (\(known))")
        }
        // Every process start (each CGI run) reads the version; only an old schema takes the write lock.
        guard version < known else { return }
        try db.transaction(write: true) { db in
            // Read again under the lock: another process may have migrated meanwhile.
            let current = try db.query("PRAGMA user_version").first?.first?.int ?? 0
            for (i, sql) in Self.migrations.enumerated().dropFirst(Int(current)) {
                try db.execute(sql)
                try db.execute("PRAGMA user_version = \(i + 1)")
            }
        }
    }
}
