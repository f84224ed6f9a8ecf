import EntraAuth
import Foundation
import MCPJSON

/// Who an operator has cut off.
public struct Block: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        case user, tenant, clientApp = "client_app"
    }
    public let kind: Kind
    public let id: String
    /// Seconds since 1970; nil blocks until unblocked.
    public let until: Int64?
    public let reason: String?

    public init(kind: Kind, id: String, until: Int64?, reason: String?) {
        self.kind = kind
        self.id = id
        self.until = until
        self.reason = reason
    }
}

public struct RateBucket: Sendable {
    public let key: String
    public let perMinute: Double
    public let burst: Double
    public init(key: String, perMinute: Double, burst: Double) {
        self.key = key
        self.perMinute = perMinute
        self.burst = burst
    }
}

/// The state every process of a deployment shares: blocks and rate-limit buckets.
/// One protocol, so a server database can stand in for SQLite on multi-host sites.
public protocol GatewayStore: AnyObject, Sendable {
    func addBlock(_ block: Block) throws
    func removeBlock(kind: Block.Kind, id: String) throws -> Bool
    func blocks(now: Int64) throws -> [Block]
    /// The first active block that matches any of these (kind, id) pairs.
    func activeBlock(matching: [(Block.Kind, String)], now: Int64) throws -> Block?
    /// Takes one token from each bucket (capacity `burst`, refilled at `perMinute`), all
    /// or none. Returns nil when allowed, or the seconds until every bucket has a token.
    func take(_ buckets: [RateBucket], now: Double) throws -> Double?
    func appendAudit(_ record: AuditRecord) throws
    /// The newest `limit` records from `since` on, in order (oldest first); only one
    /// tenant's when `tenant` is set. The limit is applied in SQL so a tail reads a tail.
    func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord]
    /// Deletes records older than `before`; returns how many.
    func pruneAudit(before: Double) throws -> Int
    func createSession(id: String, principal: String, now: Double) throws
    /// True when the session exists, belongs to `principal` and was used within `idle`
    /// seconds; it is then marked used. Anything else is "not found" to the caller.
    func useSession(id: String, principal: String, now: Double, idle: Double) throws -> Bool
    func endSession(id: String, principal: String) throws -> Bool
    /// Adds mappings in one transaction: all of them or none.
    func addMappings(_ mappings: [WorkspaceMapping]) throws
    func removeMapping(_ mapping: WorkspaceMapping) throws -> Bool
    func mappings(tenant: String?) throws -> [WorkspaceMapping]
    /// The workspaces a user may use in service-principal mode: mapped to them or to one of their groups.
    func workspaces(tenant: String, user: String, groups: [String]) throws -> Set<String>
    /// Proves the store takes writes (a write transaction that changes nothing) and says how big it is.
    func health() throws -> StoreHealth
    /// A user's sealed session with a backend, if one is stored.
    func backendSession(_ key: BackendSessionKey) throws -> StoredBackendSession?
    /// Stores (or replaces) the user's session with a backend.
    func saveBackendSession(_ key: BackendSessionKey, _ session: StoredBackendSession, now: Double) throws
    /// Records a successful check, unless another process has replaced the session since.
    func markBackendSessionChecked(_ key: BackendSessionKey, sealed: [UInt8], at: Double) throws
    func deleteBackendSession(_ key: BackendSessionKey) throws -> Bool
}

/// Whose session with which backend: one row per (instance, tenant, user, backend).
public struct BackendSessionKey: Hashable, Sendable {
    public let instance: String
    public let tenant: String
    public let user: String
    public let backend: String

    public init(instance: String, tenant: String, user: String, backend: String) {
        self.instance = instance
        self.tenant = tenant.lowercased()
        self.user = user.lowercased()
        self.backend = backend
    }

    /// Bound into the seal, with the backend's URL, so a value copied to another row or
    /// pointed at another host does not open.
    package func associatedData(baseURL: String) -> [UInt8] {
        Array("mcp-fcgi backend session v1\u{0}\(instance)\u{0}\(tenant)\u{0}\(user)\u{0}\(backend)\u{0}\(baseURL)".utf8)
    }
}

/// The cookies of one backend session, sealed (AES-256-GCM); the store never sees them in the clear.
public struct StoredBackendSession: Equatable, Sendable {
    public var sealed: [UInt8]
    /// When the backend said the session ends (cookie Max-Age / Expires), if it did.
    public var expiresAt: Double?
    /// When the backend last confirmed it through its user-info endpoint.
    public var checkedAt: Double

    public init(sealed: [UInt8], expiresAt: Double?, checkedAt: Double) {
        self.sealed = sealed
        self.expiresAt = expiresAt
        self.checkedAt = checkedAt
    }
}

public struct StoreHealth: Sendable {
    /// The database and its write-ahead log, in bytes.
    public var bytes: Int64
}

/// Grants one Power BI workspace to a user or group of a tenant (service-principal mode).
public struct WorkspaceMapping: Equatable, Sendable {
    public enum Kind: String, Sendable { case user, group }
    public let tenant: String
    public let kind: Kind
    public let principal: String
    public let workspace: String

    /// Ids are GUIDs, stored lower-cased so lookups need no case folding.
    public init(tenant: String, kind: Kind, principal: String, workspace: String) throws {
        for (name, value) in [("tenant", tenant), (kind.rawValue, principal), ("workspace", workspace)]
        where !IssuerTenantCheck.isGUID(value) {
            throw StoreError("\(name) '\(value)' is not a GUID")
        }
        self.tenant = tenant.lowercased()
        self.kind = kind
        self.principal = principal.lowercased()
        self.workspace = workspace.lowercased()
    }
}

/// SQLite in WAL mode with versioned migrations.
public final class SQLiteStore: GatewayStore, @unchecked Sendable {
    let db: SQLiteDatabase

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
    ]

    /// `durable: false` is for the serving processes (see `SQLiteDatabase`).
    public init(path: String, durable: Bool = true) throws {
        db = try SQLiteDatabase(path: path, durable: durable)
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

    public func addBlock(_ b: Block) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("INSERT OR REPLACE INTO blocks (kind, id, until, reason, created) VALUES (?, ?, ?, ?, ?)",
                         [.text(b.kind.rawValue), .text(b.id), b.until.map { .int($0) } ?? .null,
                          b.reason.map { .text($0) } ?? .null, .int(Int64(Date().timeIntervalSince1970))])
        }
        try announceBlocksChanged()
    }

    public func removeBlock(kind: Block.Kind, id: String) throws -> Bool {
        let removed = try db.transaction(write: true) { db in
            try db.query("DELETE FROM blocks WHERE kind = ? AND id = ? RETURNING id", [.text(kind.rawValue), .text(id)]).count > 0
        }
        try announceBlocksChanged()
        return removed
    }

    public func blocks(now: Int64) throws -> [Block] {
        try loadBlocks().filter { $0.until.map { $0 > now } ?? true }
    }

    private func loadBlocks() throws -> [Block] {
        try db.transaction(write: false) { db in
            try db.query("SELECT kind, id, until, reason FROM blocks ORDER BY kind, id").compactMap(Self.block)
        }
    }

    // Every request checks blocks, so each process keeps them in memory and reloads
    // only when the marker file beside the database changes: a writer replaces it
    // after committing, and a stat() per request notices within that request.
    private var markerPath: String { db.path + ".blocks" }
    private let cacheLock = NSLock()
    private var cachedBlocks: [Block] = []
    private var cachedStamp: [Int]?
    private var cacheLoaded = false

    private func markerStamp() -> [Int]? {
        var st = stat()
        guard stat(markerPath, &st) == 0 else { return nil }
        return [Int(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec), Int(st.st_size)]
    }

    private func announceBlocksChanged() throws {
        let temp = markerPath + ".\(getpid()).tmp"
        let stamp = "\(Date().timeIntervalSince1970) \(getpid())\n"
        guard FileManager.default.createFile(atPath: temp, contents: Data(stamp.utf8), attributes: [.posixPermissions: 0o600]),
              rename(temp, markerPath) == 0 else {
            throw StoreError("cannot update \(markerPath): \(String(cString: strerror(errno)))")
        }
    }

    public func activeBlock(matching keys: [(Block.Kind, String)], now: Int64) throws -> Block? {
        let stamp = markerStamp()
        cacheLock.lock()
        defer { cacheLock.unlock() }
        if !cacheLoaded || stamp != cachedStamp {
            cachedBlocks = try loadBlocks()
            cachedStamp = stamp
            cacheLoaded = true
        }
        return cachedBlocks.first { b in
            (b.until.map { $0 > now } ?? true) && keys.contains { $0.0 == b.kind && $0.1 == b.id }
        }
    }

    public func take(_ buckets: [RateBucket], now: Double) throws -> Double? {
        guard !buckets.isEmpty else { return nil }
        return try db.transaction(write: true) { db in
            var levels: [Double] = []
            var wait = 0.0
            for b in buckets {
                let row = try db.query("SELECT tokens, updated FROM rate_buckets WHERE key = ?", [.text(b.key)]).first
                var tokens = b.burst
                if let row, let t = row[0].double, let updated = row[1].double {
                    tokens = min(b.burst, t + max(0, now - updated) * b.perMinute / 60)
                }
                if tokens < 1 { wait = max(wait, (1 - tokens) * 60 / b.perMinute) }
                levels.append(tokens)
            }
            if wait > 0 { return wait }
            for (b, tokens) in zip(buckets, levels) {
                try db.query("INSERT INTO rate_buckets (key, tokens, updated) VALUES (?, ?, ?) " +
                             "ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                             [.text(b.key), .double(tokens - 1), .double(now)])
            }
            return nil
        }
    }

    public func appendAudit(_ r: AuditRecord) throws {
        _ = try db.transaction(write: true) { db in
            try db.query("""
                INSERT INTO audit (time, request_id, tenant, user, client_app, method, tool, arguments_digest, arguments,
                                   decision, reason, http_status, upstream_status, latency_ms, instance)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.double(r.time), .text(r.requestId), .optional(r.tenant), .optional(r.user), .optional(r.clientApp),
                      .optional(r.method), .optional(r.tool), .optional(r.argumentsDigest), .optional(r.arguments),
                      .text(r.decision), .optional(r.reason), .int(Int64(r.httpStatus)),
                      r.upstreamStatus.map { .int(Int64($0)) } ?? .null, .double(r.latencyMilliseconds), .optional(r.instance)])
        }
    }

    public func audit(since: Double, tenant: String?, limit: Int) throws -> [AuditRecord] {
        try db.transaction(write: false) { db in
            let columns = "time, request_id, tenant, user, client_app, method, tool, arguments_digest, arguments, decision, reason, http_status, upstream_status, latency_ms, instance"
            let newest = "SELECT seq, \(columns) FROM audit WHERE time >= ?\(tenant == nil ? "" : " AND tenant = ?") ORDER BY seq DESC LIMIT ?"
            var params: [SQLiteDatabase.Value] = [.double(since)]
            if let tenant { params.append(.text(tenant)) }
            params.append(.int(Int64(limit)))
            let rows = try db.query("SELECT \(columns) FROM (\(newest)) ORDER BY seq", params)
            return rows.map { r in
                AuditRecord(time: r[0].double ?? 0, requestId: r[1].text ?? "", instance: r[14].text, tenant: r[2].text, user: r[3].text,
                            clientApp: r[4].text, method: r[5].text, tool: r[6].text, argumentsDigest: r[7].text,
                            arguments: r[8].text, decision: r[9].text ?? "", reason: r[10].text,
                            httpStatus: Int(r[11].int ?? 0), upstreamStatus: r[12].int.map { Int($0) },
                            latencyMilliseconds: r[13].double ?? 0)
            }
        }
    }

    public func pruneAudit(before: Double) throws -> Int {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM audit WHERE time < ? RETURNING seq", [.double(before)]).count
        }
    }

    public func createSession(id: String, principal: String, now: Double) throws {
        try db.transaction(write: true) { db in
            try db.query("INSERT INTO sessions (id, principal, last_used) VALUES (?, ?, ?)", [.text(id), .text(principal), .double(now)])
            // Expired sessions are swept as new ones are made.
            try db.query("DELETE FROM sessions WHERE last_used < ?", [.double(now - 86_400)])
        }
    }

    public func useSession(id: String, principal: String, now: Double, idle: Double) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("UPDATE sessions SET last_used = ? WHERE id = ? AND principal = ? AND last_used >= ? RETURNING id",
                         [.double(now), .text(id), .text(principal), .double(now - idle)]).count == 1
        }
    }

    public func endSession(id: String, principal: String) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM sessions WHERE id = ? AND principal = ? RETURNING id", [.text(id), .text(principal)]).count == 1
        }
    }

    public func addMappings(_ mappings: [WorkspaceMapping]) throws {
        try db.transaction(write: true) { db in
            for m in mappings {
                try db.query("INSERT OR IGNORE INTO workspace_map (tenant, kind, principal, workspace) VALUES (?, ?, ?, ?)",
                             [.text(m.tenant), .text(m.kind.rawValue), .text(m.principal), .text(m.workspace)])
            }
        }
    }

    public func removeMapping(_ m: WorkspaceMapping) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM workspace_map WHERE tenant = ? AND kind = ? AND principal = ? AND workspace = ? RETURNING tenant",
                         [.text(m.tenant), .text(m.kind.rawValue), .text(m.principal), .text(m.workspace)]).count == 1
        }
    }

    public func mappings(tenant: String?) throws -> [WorkspaceMapping] {
        try db.transaction(write: false) { db in
            let sql = "SELECT tenant, kind, principal, workspace FROM workspace_map"
            let rows = try tenant.map { try db.query(sql + " WHERE tenant = ? ORDER BY kind, principal, workspace", [.text($0.lowercased())]) }
                ?? db.query(sql + " ORDER BY tenant, kind, principal, workspace")
            return rows.compactMap { r in
                guard let t = r[0].text, let k = r[1].text.flatMap(WorkspaceMapping.Kind.init(rawValue:)),
                      let p = r[2].text, let w = r[3].text else { return nil }
                return try? WorkspaceMapping(tenant: t, kind: k, principal: p, workspace: w)
            }
        }
    }

    public func workspaces(tenant: String, user: String, groups: [String]) throws -> Set<String> {
        // One query for the user and all their groups.
        let groupClause = groups.isEmpty ? "" : " OR (kind = 'group' AND principal IN (\(Array(repeating: "?", count: groups.count).joined(separator: ", "))))"
        var params: [SQLiteDatabase.Value] = [.text(tenant.lowercased()), .text(user.lowercased())]
        params += groups.map { .text($0.lowercased()) }
        return try db.transaction(write: false) { db in
            Set(try db.query("SELECT workspace FROM workspace_map WHERE tenant = ? AND ((kind = 'user' AND principal = ?)\(groupClause))",
                             params).compactMap { $0.first?.text })
        }
    }

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

    public func health() throws -> StoreHealth {
        try db.transaction(write: true) { db in try db.execute("DELETE FROM rate_buckets WHERE key = ''") }
        var bytes: Int64 = 0
        for file in [db.path, db.path + "-wal"] {
            var st = stat()
            if stat(file, &st) == 0 { bytes += Int64(st.st_size) }
        }
        return StoreHealth(bytes: bytes)
    }

    static func block(_ row: [SQLiteDatabase.Value]) -> Block? {
        guard row.count == 4, let kind = row[0].text.flatMap(Block.Kind.init(rawValue:)), let id = row[1].text else { return nil }
        return Block(kind: kind, id: id, until: row[2].int, reason: row[3].text)
    }
}
