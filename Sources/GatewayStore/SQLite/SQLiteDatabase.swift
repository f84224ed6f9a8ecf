import CSQLite
import FoundationEssentials
import Glibc
import GatewaySupport

/// One SQLite connection per process, shared by its worker threads behind a lock.
/// WAL mode and a busy wait (`SQLiteBusyWait`) let every worker process of the site use the same file.
final class SQLiteDatabase: @unchecked Sendable {
    private var db: OpaquePointer?
    private let lock = Lock()
    private let busyWait: SQLiteBusyWait
    let path: String

    init(path: String, durable: Bool = true, busyTimeoutMilliseconds: Int32 = 5000) throws {
        self.path = path
        busyWait = SQLiteBusyWait(timeoutMilliseconds: busyTimeoutMilliseconds)
        // Create the file owner-only before SQLite opens it: it holds who is blocked and how busy they are.
        // SQLite opens the -wal and -shm with O_NOFOLLOW, but it resolves a link in place of the database
        // itself, and it would write through a companion that is a hard link or another user's file:
        // all of those are refused here first. SQLite is then given the directory's real path with
        // SQLITE_OPEN_NOFOLLOW, so a link swapped in after this check is refused too.
        let resolved: String
        do {
            let fd = try StateDirectory.openOwnFile(path)
            fchmod(fd, 0o600)
            close(fd)
            for companion in [path + "-wal", path + "-shm"] { try StateDirectory.checkOwnFileIfPresent(companion) }
            resolved = try StateDirectory.inRealDirectory(path)
        } catch let e as FileSystemError {
            throw StoreError("cannot open the store: \(e.description)")
        }
        guard sqlite3_open_v2(resolved, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nil) == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw StoreError("cannot open the store \(path): \(message)")
        }
        busyWait.install(on: db)
        try execute("PRAGMA journal_mode=WAL")
        // Per connection: the serving processes write only rate counters, which need not
        // survive a power cut, so they skip the fsync at checkpoints; operator commands keep it.
        try execute(durable ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=OFF")
        // SQLite's default page cache (2,000 KiB) filled up with audit pages once the drain
        // thread had moved a few thousand records, and stayed: 2.2 MB of every serving process.
        // The requests read little from the store, and the audit indexes outgrow any such
        // cache anyway; the operating system's page cache keeps the file's pages.
        try execute("PRAGMA cache_size=-\(Self.pageCacheKiB)")
    }

    /// The page cache per connection, in KiB (SQLite's `cache_size` takes KiB when negative).
    static let pageCacheKiB = 256

    /// Prepared statements by SQL text: the same few run on every request.
    private var statements: [String: OpaquePointer] = [:]

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close(db)
    }

    func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        if sqlite3_exec(db, sql, nil, nil, &error) != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(error)
            throw StoreError("store: \(message)")
        }
    }

    enum Value {
        case text(String)
        case int(Int64)
        case double(Double)
        case null
    }

    /// Runs `body` under the lock, inside BEGIN IMMEDIATE … COMMIT when `write` is set.
    func transaction<T>(write: Bool, _ body: (SQLiteDatabase) throws -> T) throws -> T {
        // The holder may be in SQLite's busy wait with its run permit lent.
        lock.lockWhileBlocked()
        defer { lock.unlock() }
        // Prepared once and reused (see `query`): sqlite3_exec would parse them on every request.
        if write { try query("BEGIN IMMEDIATE") }
        do {
            let result = try body(self)
            if write { try query("COMMIT") }
            return result
        } catch {
            if write, sqlite3_get_autocommit(db) == 0 { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    /// Runs one statement and returns its rows. Callers hold the lock via `transaction`.
    @discardableResult
    func query(_ sql: String, _ parameters: [Value] = []) throws -> [[Value]] {
        try run(prepared(sql), parameters)
    }

    /// The statement for `sql`, prepared once per connection. A loop that runs one statement
    /// many times looks it up once (`run`): the lookup hashes the whole SQL text.
    func prepared(_ sql: String) throws -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var fresh: OpaquePointer?
        guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &fresh, nil) == SQLITE_OK, let fresh else {
            throw StoreError("store: \(String(cString: sqlite3_errmsg(db)))")
        }
        statements[sql] = fresh
        return fresh
    }

    /// Runs a statement from `prepared` and returns its rows. Callers hold the lock via `transaction`.
    @discardableResult
    func run(_ statement: OpaquePointer, _ parameters: [Value] = []) throws -> [[Value]] {
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (i, p) in parameters.enumerated() {
            let index = Int32(i + 1)
            switch p {
            case .text(let s): sqlite3_bind_text(statement, index, s, -1, mcp_sqlite_transient())
            case .int(let n): sqlite3_bind_int64(statement, index, n)
            case .double(let d): sqlite3_bind_double(statement, index, d)
            case .null: sqlite3_bind_null(statement, index)
            }
        }
        var rows: [[Value]] = []
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw StoreError("store: \(String(cString: sqlite3_errmsg(db)))") }
            var row: [Value] = []
            for c in 0..<sqlite3_column_count(statement) {
                switch sqlite3_column_type(statement, c) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(statement, c)))
                case SQLITE_FLOAT: row.append(.double(sqlite3_column_double(statement, c)))
                case SQLITE_NULL: row.append(.null)
                default: row.append(.text(String(cString: sqlite3_column_text(statement, c))))
                }
            }
            rows.append(row)
        }
        return rows
    }
}

extension SQLiteDatabase {
    /// Binds a statement's parameters in order. Text bound from bytes is not copied
    /// (`SQLITE_STATIC`): the caller keeps the bytes alive until the statement has run.
    struct Binder {
        let statement: OpaquePointer
        private(set) var index: Int32 = 1

        init(statement: OpaquePointer) { self.statement = statement }

        mutating func text(_ bytes: UnsafeBufferPointer<UInt8>?) {
            defer { index += 1 }
            guard let bytes else { sqlite3_bind_null(statement, index); return }
            guard let start = bytes.baseAddress else { sqlite3_bind_text(statement, index, "", 0, mcp_sqlite_transient()); return }
            UnsafeRawPointer(start).withMemoryRebound(to: CChar.self, capacity: bytes.count) {
                _ = sqlite3_bind_text(statement, index, $0, Int32(bytes.count), nil)
            }
        }

        mutating func int(_ n: Int64?) {
            if let n { sqlite3_bind_int64(statement, index, n) } else { sqlite3_bind_null(statement, index) }
            index += 1
        }

        mutating func double(_ d: Double) {
            sqlite3_bind_double(statement, index, d)
            index += 1
        }
    }

    /// Runs a statement from `prepared` that returns no rows, its parameters bound by `bind`.
    /// Callers hold the lock via `transaction`.
    func run(_ statement: OpaquePointer, binding bind: (inout Binder) -> Void) throws {
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        var binder = Binder(statement: statement)
        bind(&binder)
        let rc = sqlite3_step(statement)
        guard rc == SQLITE_DONE else {
            throw StoreError(rc == SQLITE_ROW ? "store: the statement returned rows" : "store: \(String(cString: sqlite3_errmsg(db)))")
        }
    }
}

extension SQLiteDatabase.Value {
    static func optional(_ s: String?) -> Self { s.map { .text($0) } ?? .null }
    static func optional(_ d: Double?) -> Self { d.map { .double($0) } ?? .null }
    var int: Int64? { if case .int(let n) = self { return n }; return nil }
    var double: Double? {
        switch self { case .double(let d): return d; case .int(let n): return Double(n); default: return nil }
    }
    var text: String? { if case .text(let s) = self { return s }; return nil }
}
