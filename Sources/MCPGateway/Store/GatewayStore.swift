import Foundation

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

/// The state every process of a deployment shares: blocks and rate-limit buckets.
/// One protocol, so a server database can stand in for SQLite on multi-host sites.
public protocol GatewayStore: AnyObject, Sendable {
    func addBlock(_ block: Block) throws
    func removeBlock(kind: Block.Kind, id: String) throws -> Bool
    func blocks(now: Int64) throws -> [Block]
    /// The first active block that matches any of these (kind, id) pairs.
    func activeBlock(matching: [(Block.Kind, String)], now: Int64) throws -> Block?
    /// Takes one token from the bucket `key` (capacity `burst`, refilled at `perMinute`).
    /// Returns nil when allowed, or the seconds until a token is available.
    func take(key: String, perMinute: Double, burst: Double, now: Double) throws -> Double?
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
    ]

    public init(path: String) throws {
        db = try SQLiteDatabase(path: path)
        try db.transaction(write: true) { db in
            let version = try db.query("PRAGMA user_version").first?.first?.int ?? 0
            guard version <= Int64(Self.migrations.count) else {
                throw StoreError("the store \(path) has schema version \(version), newer than this build knows (\(Self.migrations.count))")
            }
            for (i, sql) in Self.migrations.enumerated().dropFirst(Int(version)) {
                try db.execute(sql)
                try db.execute("PRAGMA user_version = \(i + 1)")
            }
        }
    }

    public func addBlock(_ b: Block) throws {
        try db.transaction(write: true) { db in
            try db.query("INSERT OR REPLACE INTO blocks (kind, id, until, reason, created) VALUES (?, ?, ?, ?, ?)",
                         [.text(b.kind.rawValue), .text(b.id), b.until.map { .int($0) } ?? .null,
                          b.reason.map { .text($0) } ?? .null, .int(Int64(Date().timeIntervalSince1970))])
        }
    }

    public func removeBlock(kind: Block.Kind, id: String) throws -> Bool {
        try db.transaction(write: true) { db in
            try db.query("DELETE FROM blocks WHERE kind = ? AND id = ? RETURNING id", [.text(kind.rawValue), .text(id)]).count > 0
        }
    }

    public func blocks(now: Int64) throws -> [Block] {
        try db.transaction(write: false) { db in
            try db.query("SELECT kind, id, until, reason FROM blocks WHERE until IS NULL OR until > ? ORDER BY kind, id", [.int(now)])
                .compactMap(Self.block)
        }
    }

    public func activeBlock(matching keys: [(Block.Kind, String)], now: Int64) throws -> Block? {
        guard !keys.isEmpty else { return nil }
        let clause = Array(repeating: "(kind = ? AND id = ?)", count: keys.count).joined(separator: " OR ")
        var params: [SQLiteDatabase.Value] = keys.flatMap { [.text($0.0.rawValue), .text($0.1)] }
        params.append(.int(now))
        return try db.transaction(write: false) { db in
            try db.query("SELECT kind, id, until, reason FROM blocks WHERE (\(clause)) AND (until IS NULL OR until > ?) LIMIT 1", params)
                .compactMap(Self.block).first
        }
    }

    public func take(key: String, perMinute: Double, burst: Double, now: Double) throws -> Double? {
        try db.transaction(write: true) { db in
            let row = try db.query("SELECT tokens, updated FROM rate_buckets WHERE key = ?", [.text(key)]).first
            let rate = perMinute / 60
            var tokens = burst
            if let row, let t = row[0].double, let updated = row[1].double {
                tokens = min(burst, t + max(0, now - updated) * rate)
            }
            guard tokens >= 1 else { return (1 - tokens) / rate }
            try db.query("INSERT INTO rate_buckets (key, tokens, updated) VALUES (?, ?, ?) " +
                         "ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                         [.text(key), .double(tokens - 1), .double(now)])
            return nil
        }
    }

    static func block(_ row: [SQLiteDatabase.Value]) -> Block? {
        guard row.count == 4, let kind = row[0].text.flatMap(Block.Kind.init(rawValue:)), let id = row[1].text else { return nil }
        return Block(kind: kind, id: id, until: row[2].int, reason: row[3].text)
    }
}
