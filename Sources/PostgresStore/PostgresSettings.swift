import FoundationEssentials
import Glibc
import GatewayStore
import GatewaySupport

/// How the gateway reaches PostgreSQL (`store.url` and friends), checked before any connection:
/// no password inside the URL (it comes from `store.password_file` or `PGPASSWORD`), and TLS
/// verified against the host name (`sslmode=verify-full`, the default) unless every host is a
/// unix socket or loopback.
public struct PostgresSettings: Sendable, Equatable {
    /// The libpq connection string or URI, as configured.
    public var url: String
    /// Read from `store.password_file`; never logged, never part of an error message.
    public var password: String?
    public var connectTimeoutSeconds: Int = 3
    public var statementTimeoutMilliseconds: Int = 2000
    /// How long a request waits for a free connection of its process's pool before it fails.
    public var poolWaitMilliseconds: Int = 2000
    public var poolSize: Int = 4
    public var applicationName: String = "mcp-fcgi"

    public init(url: String, password: String? = nil) throws {
        self.url = url
        self.password = password
        let options = try PostgresConnection.parseConnectionString(url)
        if options["password"] != nil {
            throw StoreError("store.url must not hold a password: put it in store.password_file (mode 0600) or PGPASSWORD")
        }
        let sslmode = options["sslmode"] ?? "verify-full"
        let hosts = (options["host"] ?? "").split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            + (options["hostaddr"] ?? "").split(separator: ",").map(String.init)
        let remote = hosts.filter { !Self.isLocal($0) }
        if sslmode != "verify-full", !remote.isEmpty {
            throw StoreError("store.url: sslmode=\(sslmode) to \(remote.joined(separator: ", ")) is refused; a remote server " +
                             "is reached with sslmode=verify-full (weaker modes only over a unix socket or loopback)")
        }
    }

    /// Why this host cannot reach PostgreSQL at all (libpq missing), or nil; the config reader
    /// reports it on `store.engine`.
    public static var libraryProblem: String? { PostgresConnection.libraryProblem }

    /// A unix socket directory (or the default socket) or a loopback address.
    static func isLocal(_ host: String) -> Bool {
        host.isEmpty || host.hasPrefix("/") || host.hasPrefix("@") || host == "localhost" || host == "::1"
            || host.hasPrefix("127.")
    }

    /// Reads the password file: a regular file owned by the user the gateway runs as (or root),
    /// not readable by group or others; one line, the trailing newline dropped.
    public static func readPasswordFile(_ path: String) throws -> String {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            throw StoreError("cannot read store.password_file \(path): \(String(cString: strerror(errno)))")
        }
        guard st.st_uid == geteuid() || st.st_uid == 0 else {
            throw StoreError("store.password_file \(path) must be owned by the user the gateway runs as (uid \(geteuid())) or root")
        }
        // Regular, not a symlink, not readable by group or others, bounded.
        guard let bytes = try PrivateFiles.readSecret(path, what: "store.password_file", maxBytes: 1024),
              var text = String(bytes: bytes, encoding: .utf8) else {
            throw StoreError("cannot read store.password_file \(path)")
        }
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty, !text.contains("\n") else { throw StoreError("store.password_file \(path) must hold one line") }
        return text
    }

    /// The parameters for `PQconnectdbParams`: the URL expanded first, the gateway's limits after it.
    var connectionParameters: [(String, String)] {
        var p: [(String, String)] = [("dbname", url)]
        let options = (try? PostgresConnection.parseConnectionString(url)) ?? [:]
        if options["sslmode"] == nil { p.append(("sslmode", "verify-full")) }
        if let password { p.append(("password", password)) }
        p.append(("connect_timeout", String(connectTimeoutSeconds)))
        // A statement that runs too long is cancelled by the server; a dead peer is noticed by the kernel.
        p.append(("options", ((options["options"].map { $0 + " " }) ?? "") + "-c statement_timeout=\(statementTimeoutMilliseconds)"))
        p.append(("application_name", applicationName))
        p.append(("keepalives", "1"))
        p.append(("keepalives_idle", "10"))
        p.append(("keepalives_interval", "5"))
        p.append(("keepalives_count", "2"))
        p.append(("tcp_user_timeout", String(max(statementTimeoutMilliseconds, connectTimeoutSeconds * 1000) + 1000)))
        return p
    }

    /// The URL without anything secret, for messages (a URL holds none: the initialiser refuses it).
    public var displayURL: String { url }
}
