import CLibPQ
import FoundationEssentials
import Glibc
import GatewayStore
import GatewaySupport

/// A statement parameter, sent in libpq's text format.
enum PGValue {
    case text(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)
    case null
    /// A `text[]` array literal.
    case textArray([String])
    /// A `float8[]` array literal.
    case doubleArray([Double])

    static func optional(_ s: String?) -> PGValue { s.map { .text($0) } ?? .null }
    static func optional(_ d: Double?) -> PGValue { d.map { .double($0) } ?? .null }
    static func optional(_ n: Int?) -> PGValue { n.map { .int(Int64($0)) } ?? .null }

    /// The value as PostgreSQL reads it in text format; nil is SQL NULL.
    var wire: String? {
        switch self {
        case .text(let s): return s
        case .int(let n): return String(n)
        // Swift writes the shortest text that reads back to the same Double; PostgreSQL's float8 reads it.
        case .double(let d): return d.description
        case .bool(let b): return b ? "t" : "f"
        case .null: return nil
        case .textArray(let items):
            let quoted = items.map { item -> String in
                "\"" + item.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
            }
            return "{" + quoted.joined(separator: ",") + "}"
        case .doubleArray(let items): return "{" + items.map(\.description).joined(separator: ",") + "}"
        }
    }
}

/// One result row, every column as PostgreSQL's text output (nil for NULL).
struct PGRow {
    let columns: [String?]
    subscript(_ i: Int) -> String? { columns[i] }
    func text(_ i: Int) -> String? { columns[i] }
    func double(_ i: Int) -> Double? { columns[i].flatMap(Double.init) }
    func int(_ i: Int) -> Int64? { columns[i].flatMap { Int64($0) } }
    func bool(_ i: Int) -> Bool? { columns[i].map { $0 == "t" } }
}

/// What went wrong talking to PostgreSQL. `connectionLost` says the connection is unusable
/// (server gone, restarted or unreachable): the pool drops it and the next use connects again.
/// Messages carry PostgreSQL's own text and SQLSTATE, never a parameter value.
struct PostgresError: Error, CustomStringConvertible {
    let message: String
    let sqlState: String?
    let connectionLost: Bool

    var description: String {
        "store (PostgreSQL): \(message)" + (sqlState.map { " [SQLSTATE \($0)]" } ?? "")
    }

    /// 57014: the statement ran past `statement_timeout` and was cancelled.
    var isTimeout: Bool { sqlState == "57014" }
}

/// One libpq connection. Not shared between threads: the pool lends it to one caller at a time.
final class PostgresConnection {
    private let conn: OpaquePointer

    /// `keywords`/`values` as `PQconnectdbParams` takes them, `dbname` first and expanded
    /// (a connection string or URI), the gateway's own settings after it so they win.
    init(parameters: [(String, String)]) throws {
        try Self.requireLibrary()
        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        var k: [UnsafePointer<CChar>?] = keywords.map { UnsafePointer($0) } + [nil]
        var v: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        guard let c = mcp_pq_connectdb_params(&k, &v, 1) else {
            throw PostgresError(message: "cannot allocate a connection", sqlState: nil, connectionLost: true)
        }
        guard mcp_pq_status(c) == CONNECTION_OK else {
            let message = Self.trimmed(mcp_pq_error_message(c))
            mcp_pq_finish(c)
            throw PostgresError(message: "cannot connect: \(message)", sqlState: nil, connectionLost: true)
        }
        conn = c
    }

    deinit { mcp_pq_finish(conn) }

    var isUsable: Bool { mcp_pq_status(conn) == CONNECTION_OK && mcp_pq_transaction_status(conn) == PQTRANS_IDLE }

    /// The server's major version times 10000 (150000 for 15.0).
    var serverVersion: Int { Int(mcp_pq_server_version(conn)) }

    /// Runs one parameterised statement and returns its rows; values only ever travel as parameters.
    @discardableResult
    func query(_ sql: String, _ parameters: [PGValue] = []) throws -> [PGRow] {
        let wires = parameters.map { $0.wire.flatMap { strdup($0) } }
        defer { wires.forEach { $0.map { free($0) } } }
        var values: [UnsafePointer<CChar>?] = wires.map { $0.map { UnsafePointer($0) } }
        // A round trip to the server: the worker's run permit is lent meanwhile.
        let result = whileBlocked {
            values.withUnsafeMutableBufferPointer { buffer in
                mcp_pq_exec_params(conn, sql, Int32(parameters.count), buffer.baseAddress)
            }
        }
        guard let result else { throw failure(nil) }
        defer { mcp_pq_clear(result) }
        switch mcp_pq_result_status(result) {
        case PGRES_COMMAND_OK: return []
        case PGRES_TUPLES_OK:
            let rows = mcp_pq_ntuples(result), columns = mcp_pq_nfields(result)
            return (0..<rows).map { r in
                PGRow(columns: (0..<columns).map { c in
                    mcp_pq_getisnull(result, r, c) == 1 ? nil : mcp_pq_getvalue(result, r, c).map { String(cString: $0) }
                })
            }
        default: throw failure(result)
        }
    }

    /// Runs a script of several statements without parameters (a migration).
    func execute(_ script: String) throws {
        guard let result = whileBlocked({ mcp_pq_exec(conn, script) }) else { throw failure(nil) }
        defer { mcp_pq_clear(result) }
        let status = mcp_pq_result_status(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw failure(result) }
    }

    /// Runs `body` inside BEGIN … COMMIT, rolled back if it throws.
    func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try query("BEGIN")
        do {
            let value = try body(self)
            try query("COMMIT")
            return value
        } catch {
            if mcp_pq_status(conn) == CONNECTION_OK { _ = try? query("ROLLBACK") }
            throw error
        }
    }

    private func failure(_ result: OpaquePointer?) -> PostgresError {
        let state = result.flatMap { mcp_pq_result_error_field($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) }
        let primary = result.flatMap { mcp_pq_result_error_field($0, Int32(UInt8(ascii: "M"))) }.map { String(cString: $0) }
        return PostgresError(message: primary ?? Self.trimmed(mcp_pq_error_message(conn)), sqlState: state,
                             connectionLost: mcp_pq_status(conn) != CONNECTION_OK)
    }

    private static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        message.map { String(cString: $0).trimmingASCIIWhitespaceAndNewlines() } ?? "unknown error"
    }

    /// Why this process cannot use PostgreSQL, or nil. libpq is loaded on first use (a SQLite
    /// deployment never loads it), so a host without it learns of that here, not at start.
    static var libraryProblem: String? {
        mcp_pq_load_error().map { "needs libpq, which this host cannot load: " + String(cString: $0) }
    }

    static func requireLibrary() throws {
        if let libraryProblem { throw StoreError("store.engine \"postgres\" " + libraryProblem) }
    }

    /// The keyword/value pairs of a connection string or URI, as libpq reads it (nil values left out).
    static func parseConnectionString(_ conninfo: String) throws -> [String: String] {
        try requireLibrary()
        var error: UnsafeMutablePointer<CChar>?
        guard let options = mcp_pq_conninfo_parse(conninfo, &error) else {
            let message = error.map { String(cString: $0).trimmingASCIIWhitespaceAndNewlines() } ?? "out of memory"
            if let error { mcp_pq_freemem(error) }
            throw StoreError("store.url is not a valid PostgreSQL connection string: \(message)")
        }
        defer { mcp_pq_conninfo_free(options) }
        var out: [String: String] = [:]
        var i = 0
        while let keyword = options[i].keyword {
            if let value = options[i].val { out[String(cString: keyword)] = String(cString: value) }
            i += 1
        }
        return out
    }
}
