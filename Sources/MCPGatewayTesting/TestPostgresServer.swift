import Foundation

/// A real PostgreSQL server from Debian's packages for the store tests: initdb in a temporary
/// directory, listening only on a unix socket there, no system service. As root it runs as
/// `nobody` (initdb refuses root). Missing binaries are an error that says what to install,
/// never a silently skipped test.
public final class TestPostgresServer: @unchecked Sendable {
    public let directory: String
    private let bin: String
    private var running = false

    /// One server for a whole test run, started on first use and stopped when the process exits.
    public static let shared: Result<TestPostgresServer, Error> = Result { try TestPostgresServer() }

    nonisolated(unsafe) private static var started: [TestPostgresServer] = []

    public init() throws {
        bin = try Self.binDirectory()
        directory = FileManager.default.temporaryDirectory.path + "/mcp-pg-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if geteuid() == 0 {
            guard let nobody = getpwnam("nobody") else { throw TestPostgresError("no user 'nobody' to run PostgreSQL as") }
            chown(directory, nobody.pointee.pw_uid, nobody.pointee.pw_gid)
        }
        try run(bin + "/initdb", ["-D", directory + "/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        if Self.started.isEmpty { atexit { TestPostgresServer.started.forEach { $0.tearDown() } } }
        Self.started.append(self)
        try start()
    }

    /// Fast and unsafe on a crash, which a throwaway server may be.
    public func start() throws {
        try run(bin + "/pg_ctl", ["-D", directory + "/data", "-l", directory + "/log", "-w", "-o",
                                  "-k \(directory) -c listen_addresses='' -c fsync=off -c max_connections=200", "start"])
        running = true
    }

    public func stop() throws {
        try run(bin + "/pg_ctl", ["-D", directory + "/data", "-m", "fast", "-w", "stop"])
        running = false
    }

    private func tearDown() {
        if running { try? stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A fresh database on this server, as a libpq connection string over its socket.
    public func createDatabase() throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try psql("CREATE DATABASE \(name)")
        return "host=\(directory) user=postgres dbname=\(name) sslmode=disable"
    }

    /// Runs SQL as the superuser in `database` (the tests set up roles and look at rows with it).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try run(bin + "/psql", ["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", directory, "-U", "postgres", "-d", database, "-c", sql],
                asServerUser: false)
    }

    /// Runs a tool to its end with posix_spawn and waitpid: Foundation's `Process` would wait on
    /// a descriptor the server that `pg_ctl start` leaves running inherits, and never return.
    @discardableResult
    private func run(_ tool: String, _ arguments: [String], asServerUser: Bool = true) throws -> String {
        let argv = (asServerUser && geteuid() == 0) ? ["/usr/sbin/runuser", "-u", "nobody", "--", tool] + arguments : [tool] + arguments
        let outputPath = directory + "/command-output"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o666)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        guard rc == 0 else { throw TestPostgresError("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0 else {
            throw TestPostgresError("\((tool as NSString).lastPathComponent) \(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin.
    static func binDirectory() throws -> String {
        let root = "/usr/lib/postgresql"
        let majors = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        for major in majors.reversed() where FileManager.default.isExecutableFile(atPath: "\(root)/\(major)/bin/initdb") {
            return "\(root)/\(major)/bin"
        }
        throw TestPostgresError("PostgreSQL server binaries not found under \(root)/*/bin: install the Debian packages " +
                                "postgresql and libpq-dev (scripts/deps does)")
    }
}

public struct TestPostgresError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
