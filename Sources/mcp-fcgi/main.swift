import GatewayStore
import GatewaySupport
import ArgumentParser
import EntraAuth
import Foundation
import MCPGateway
import MCPJSON

/// The environment, read once: Foundation builds a new dictionary on every
/// `ProcessInfo.environment`, which a CGI process would otherwise pay four times.
let processEnvironment = ProcessInfo.processInfo.environment

/// The config path: --config, else $MCP_FCGI_CONFIG, else the Debian-style default.
func resolveConfigPath(_ option: String?) -> String {
    option ?? processEnvironment["MCP_FCGI_CONFIG"] ?? "/etc/mcp-fcgi/config.json"
}

func loadConfig(_ option: String?) throws -> GatewayConfig {
    do {
        return try GatewayConfig.load(path: resolveConfigPath(option), environment: processEnvironment)
    } catch let e as ConfigErrors {
        FileHandle.standardError.write(Data((e.description + "\n").utf8))
        throw ExitCode(78)  // EX_CONFIG
    }
}

/// The --config and --instance options every subcommand shares.
struct ConfigFileOption: ParsableArguments {
    @Option(help: "Config file (default: $MCP_FCGI_CONFIG, then /etc/mcp-fcgi/config.json).")
    var config: String?

    @Option(help: "Which instance, when the config has several (`instances`).")
    var instance: String?

    /// The instances a command acts on: the one named, the only one, or (where `all` makes sense) every one.
    func instances(all: Bool = false) throws -> [GatewayConfig] {
        let root = try loadConfig(config)
        let list = root.instances.isEmpty ? [root] : root.instances
        if let instance {
            guard let c = list.first(where: { $0.instanceName == instance }) else {
                throw ValidationError("no instance \(instance) in the config; it has \(list.map(\.instanceName).joined(separator: ", "))")
            }
            return [c]
        }
        guard list.count == 1 || all else {
            throw ValidationError("this config has several instances (\(list.map(\.instanceName).joined(separator: ", "))): name one with --instance")
        }
        return list
    }

    func single() throws -> GatewayConfig { try instances()[0] }
}

struct MCPFastCGI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp-fcgi",
        abstract: "MCP tools behind nginx or Apache, as a FastCGI (or CGI) application.",
        version: GatewayVersion.string,
        subcommands: [Serve.self, DevToken.self, CheckConfig.self, Doctor.self, BlockCommand.self, UnblockCommand.self, BlocksCommand.self, AuditCommand.self, MappingCommand.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve requests: on --listen, on the socket a spawner left on fd 0, or one CGI request.")

    @OptionGroup var configFile: ConfigFileOption

    @Option(help: "unix:/path/to.sock or HOST:PORT. Without it: fd 0 when it is a listening socket, else CGI.")
    var listen: String?

    @Option(help: "Worker threads (default from the config).")
    var workers: Int?

    @Option(help: "Mode of a unix socket, in octal (default 660).")
    var socketMode: String = "660"

    func run() throws {
        try serve(config: configFile.config, listen: listen, workers: workers, socketMode: socketMode)
    }
}

/// `serve`, callable without the argument parser (see the end of this file).
func serve(config configOption: String?, listen: String?, workers: Int?, socketMode: String) throws {
    let cfg = try loadConfig(configOption)
    Log.shared.level = cfg.logLevel
    // For a quick look without editing the file (systemd Environment=, FcgidInitialEnv).
    if let name = processEnvironment["MCP_FCGI_LOG_LEVEL"] {
        guard let level = Log.Level(name: name) else {
            Log.shared.error("MCP_FCGI_LOG_LEVEL must be debug, info, warning or error")
            throw ExitCode(78)
        }
        Log.shared.level = level
    }
    for instance in cfg.instances where instance.auth.mode == .development {
        Log.shared.warning("DEVELOPMENT MODE: only tokens minted by `mcp-fcgi dev-token` are accepted; never expose this instance",
                           ["instance": .string(instance.instanceName)])
    }
    let address: ListenAddress?
    do {
        if let listen {
            address = try ListenAddress(parsing: listen)
        } else if let activated = try ListenAddress.systemdActivated(environment: processEnvironment) {
            address = activated
        } else {
            address = FastCGIServer.stdinIsListeningSocket() ? .inherited : nil
        }
    } catch {
        Log.shared.error("\(error)")
        throw ExitCode(64)
    }
    // Without a listening socket this process answers one request as a CGI program.
    let workerThreads = address == nil ? 1 : workers ?? cfg.server.workers
    let gateway: Gateway
    do {
        gateway = try Gateway.make(config: cfg, workerThreads: workerThreads)
    } catch {
        Log.shared.error("cannot start", ["error": .string(String(describing: error))])
        throw ExitCode(78)
    }
    guard let address else {
        throw ExitCode(CGIResponder(handler: gateway, maxBodyBytes: cfg.limits.maxBodyBytes).respondOnce())
    }
    guard let mode = mode_t(socketMode, radix: 8), mode <= 0o777 else {
        Log.shared.error("--socket-mode must be octal, e.g. 660")
        throw ExitCode(64)
    }
    let server = FastCGIServer(handler: gateway, options: .init(
        workers: workerThreads, maxBodyBytes: cfg.limits.maxBodyBytes,
        shutdownGrace: cfg.server.shutdownGraceSeconds, socketMode: mode))
    // The instances share one mapping of the counters file; it counts this process once.
    let counters = gateway.instances[0].metrics.counters
    counters?.registerProcess()
    defer { counters?.unregisterProcess() }
    do {
        throw ExitCode(try server.run(listen: address))
    } catch let e as ServerError {
        Log.shared.error("cannot serve", ["error": .string(e.description)])
        throw ExitCode(71)
    }
}

struct DevToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-token",
        abstract: "Mint an access token for an instance in development mode (auth.mode = \"development\").")

    @OptionGroup var configFile: ConfigFileOption

    @Option(help: "Tenant id (GUID); default: the first allowed tenant.")
    var tenant: String?

    @Option(help: "User object id (GUID).")
    var oid: String = "11111111-1111-4111-8111-111111111111"

    @Option(help: "Comma-separated app roles, e.g. MCP.User,MCP.Admin.")
    var roles: String = ""

    @Option(help: "Comma-separated delegated scopes; none makes an app-only token.")
    var scopes: String = "mcp.tools"

    @Option(help: "Lifetime in seconds.")
    var ttl: Int64 = 3600

    @Option(help: "Audience; default: the first configured audience.")
    var audience: String?

    @Option(help: "Display name claim.")
    var name: String?

    @Option(name: .customLong("client-capabilities"),
            help: "Comma-separated xms_cc values, e.g. cp1 for a client that handles claims challenges.")
    var clientCapabilities: String?

    func run() throws {
        let cfg = try configFile.single()
        guard cfg.auth.mode == .development else {
            FileHandle.standardError.write(Data("dev-token: this config is not in development mode (auth.mode is \"\(cfg.auth.mode.rawValue)\")\n".utf8))
            throw ExitCode(64)
        }
        guard let tid = tenant ?? cfg.auth.allowedTenants.first, let aud = audience ?? cfg.auth.audiences.first else {
            FileHandle.standardError.write(Data("dev-token: give --tenant and --audience\n".utf8))
            throw ExitCode(64)
        }
        guard (1...86_400).contains(ttl) else { throw ValidationError("--ttl must be 1 to 86400 seconds") }
        let key = try DevSigningKey.loadOrCreate(stateDirectory: cfg.stateDirectory)
        let list = { (s: String) in s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
        var extra = JSONObject()
        if let clientCapabilities { extra["xms_cc"] = JSONValue(list(clientCapabilities)) }
        let token = try DevTokenMinter(key: key).mint(tenantId: tid, objectId: oid, audience: aud, scopes: list(scopes),
                                                      roles: list(roles), name: name, ttl: ttl, extraClaims: extra)
        print(token)
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file; print every problem with its location.")

    @OptionGroup var configFile: ConfigFileOption

    func run() throws {
        let path = resolveConfigPath(configFile.config)
        let cfg: GatewayConfig
        do {
            cfg = try GatewayConfig.load(path: path)
        } catch let e as ConfigErrors {
            for error in e.errors { print("\(path): \(error)") }
            print("\(e.errors.count) problem(s) found")
            throw ExitCode(78)  // EX_CONFIG
        }
        print("\(path): OK")
        for i in cfg.instances {
            print("instance \(i.instanceName): \(i.server.mcpPath), auth \(i.auth.mode.rawValue), \(i.auth.allowedTenants.count) tenant(s), store \(i.resolvedStorePath)")
        }
    }
}

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "From this host: state directory, store, metrics file, discovery and JWKS (and upstreams when configured); a pass/fail table.")

    @OptionGroup var configFile: ConfigFileOption

    func run() throws {
        let cfg = try loadConfig(configFile.config)
        let checks = MCPGateway.Doctor(config: cfg).run()
        print(MCPGateway.Doctor.table(checks), terminator: "")
        if checks.contains(where: { $0.outcome == .fail }) { throw ExitCode(1) }
    }
}

/// Which principal a block names: exactly one of --user, --tenant, --client-app.
struct PrincipalOption: ParsableArguments {
    @Option(help: "User object id (oid).") var user: String?
    @Option(help: "Tenant id (tid).") var tenant: String?
    @Option(name: .customLong("client-app"), help: "Client application id (azp/appid).") var clientApp: String?

    func target() throws -> (Block.Kind, String) {
        let given = [(Block.Kind.user, user), (.tenant, tenant), (.clientApp, clientApp)].compactMap { k, v in v.map { (k, $0) } }
        guard given.count == 1, let (kind, id) = given.first else {
            throw ValidationError("name exactly one of --user, --tenant or --client-app")
        }
        guard IssuerTenantCheck.isGUID(id) else { throw ValidationError("\(id) is not an Entra id (GUID)") }
        return (kind, id.lowercased())
    }
}

/// Opens the shared store for an operator command. Run as root, the files it creates
/// are handed to the owner of the state directory, the user the service runs as,
/// so the service can still open them.
func withStore<T>(_ option: ConfigFileOption, _ body: (StateStores) throws -> T) throws -> T {
    try withStore(try option.single(), body)
}

func withStore<T>(_ cfg: GatewayConfig, _ body: (StateStores) throws -> T) throws -> T {
    try FileManager.default.createDirectory(atPath: cfg.stateDirectory, withIntermediateDirectories: true,
                                            attributes: [.posixPermissions: 0o700])
    let result = try body(try StateStores.sqlite(path: cfg.resolvedStorePath))
    var st = stat()
    if geteuid() == 0, stat(cfg.stateDirectory, &st) == 0, st.st_uid != 0 {
        let path = cfg.resolvedStorePath
        for file in [path, path + "-wal", path + "-shm", path + ".blocks"] { _ = chown(file, st.st_uid, st.st_gid) }
    }
    return result
}

struct BlockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block", abstract: "Deny a user, tenant or client app at once, in every process, until unblocked or --until.")
    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var who: PrincipalOption
    @Option(help: "When the block ends: an ISO 8601 time (2026-12-01T00:00:00Z) or a duration (90m, 12h, 7d).")
    var until: String?
    @Option(help: "Why, for the record.") var reason: String?

    func run() throws {
        let (kind, id) = try who.target()
        var end: Int64?
        if let until { end = try parseUntil(until) }
        // Without --instance a block covers every instance: cutting access is an emergency.
        for cfg in try configFile.instances(all: true) {
            try withStore(cfg) { try $0.blocks.addBlock(Block(kind: kind, id: id, until: end, reason: reason)) }
            print("blocked \(kind.rawValue) \(id) in instance \(cfg.instanceName)" + (end.map { " until \(Date(timeIntervalSince1970: TimeInterval($0)))" } ?? ""))
        }
    }

    func parseUntil(_ text: String) throws -> Int64 {
        if let date = ISO8601DateFormatter().date(from: text) { return Int64(date.timeIntervalSince1970) }
        if let seconds = durationSeconds(text) { return Int64(Date().timeIntervalSince1970) + seconds }
        throw ValidationError("--until takes an ISO 8601 time or a duration such as 90m, 12h, 7d")
    }
}

/// "90m", "12h", "7d", "30s" as seconds.
func durationSeconds(_ text: String) -> Int64? {
    let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
    guard let unit = text.last.flatMap({ units[$0] }), let n = Int64(text.dropLast()), n > 0, n < 1 << 40 else { return nil }
    return n * unit
}

struct UnblockCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unblock", abstract: "Lift a block.")
    @OptionGroup var configFile: ConfigFileOption
    @OptionGroup var who: PrincipalOption

    func run() throws {
        let (kind, id) = try who.target()
        var any = false
        for cfg in try configFile.instances(all: true) {
            let removed = try withStore(cfg) { try $0.blocks.removeBlock(kind: kind, id: id) }
            if removed { print("unblocked \(kind.rawValue) \(id) in instance \(cfg.instanceName)") }
            any = any || removed
        }
        if !any {
            print("no block on \(kind.rawValue) \(id)")
            throw ExitCode(1)
        }
    }
}

struct BlocksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "blocks", abstract: "List the blocks in force.")
    @OptionGroup var configFile: ConfigFileOption

    func run() throws {
        for cfg in try configFile.instances(all: true) {
            for b in try withStore(cfg, { try $0.blocks.blocks(now: Int64(Date().timeIntervalSince1970)) }) {
                let until = b.until.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval($0))) } ?? "until unblocked"
                print("\(cfg.instanceName)\t\(b.kind.rawValue)\t\(b.id)\t\(until)\t\(b.reason ?? "")")
            }
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Read the audit trail as JSON lines.", subcommands: [Tail.self, Export.self])

    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The most recent records.")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "How many records.") var lines: Int = 20
        @Option(help: "Only this tenant's records.") var tenant: String?

        func run() throws {
            let records = try withStore(configFile) { try $0.audit.audit(since: 0, tenant: tenant?.lowercased(), limit: max(0, lines)) }
            for r in records { print(r.json) }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every record since a time.")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "An ISO 8601 time (2026-11-01T00:00:00Z) or a duration back from now (90m, 12h, 7d).") var since: String
        @Option(help: "Only this tenant's records.") var tenant: String?

        func run() throws {
            let start: Double
            if let date = ISO8601DateFormatter().date(from: since) {
                start = date.timeIntervalSince1970
            } else if let seconds = durationSeconds(since) {
                start = Date().timeIntervalSince1970 - Double(seconds)
            } else {
                throw ValidationError("--since takes an ISO 8601 time or a duration such as 90m, 12h, 7d")
            }
            for r in try withStore(configFile, { try $0.audit.audit(since: start, tenant: tenant?.lowercased(), limit: Int.max) }) {
                print(r.json)
            }
        }
    }
}

/// Which user or group a mapping is for, and in which tenant.
struct MappingTarget: ParsableArguments {
    @Option(help: "Tenant id.") var tenant: String
    @Option(help: "User object id.") var user: String?
    @Option(help: "Group object id.") var group: String?
    @Option(help: "Power BI workspace id.") var workspace: String

    func mapping() throws -> WorkspaceMapping {
        switch (user, group) {
        case (let u?, nil): return try WorkspaceMapping(tenant: tenant, kind: .user, principal: u, workspace: workspace)
        case (nil, let g?): return try WorkspaceMapping(tenant: tenant, kind: .group, principal: g, workspace: workspace)
        default: throw ValidationError("name exactly one of --user or --group")
        }
    }
}

struct MappingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mapping", abstract: "Which Power BI workspaces users and groups may use in service-principal mode.",
        subcommands: [Add.self, Remove.self, List.self, Import.self])

    struct Add: ParsableCommand {
        @OptionGroup var configFile: ConfigFileOption
        @OptionGroup var target: MappingTarget
        func run() throws {
            let m = try target.mapping()
            try withStore(configFile) { try $0.mappings.addMappings([m]) }
            print("mapped \(m.kind.rawValue) \(m.principal) to workspace \(m.workspace) in tenant \(m.tenant)")
        }
    }

    struct Remove: ParsableCommand {
        @OptionGroup var configFile: ConfigFileOption
        @OptionGroup var target: MappingTarget
        func run() throws {
            let m = try target.mapping()
            let removed = try withStore(configFile) { try $0.mappings.removeMapping(m) }
            print(removed ? "removed" : "no such mapping")
            if !removed { throw ExitCode(1) }
        }
    }

    struct List: ParsableCommand {
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "Only this tenant.") var tenant: String?
        func run() throws {
            print(MappingCSV.header)
            for m in try withStore(configFile, { try $0.mappings.mappings(tenant: tenant) }) {
                print("\(m.tenant),\(m.kind.rawValue),\(m.principal),\(m.workspace)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add every mapping in a CSV file (the format `list` prints), all or none.")
        @OptionGroup var configFile: ConfigFileOption
        @Argument(help: "CSV file with the header tenant,kind,principal,workspace.") var file: String
        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            switch MappingCSV.parse(String(decoding: data, as: UTF8.self)) {
            case .failure(let problems):
                for p in problems.lines { FileHandle.standardError.write(Data("\(file): \(p)\n".utf8)) }
                throw ExitCode(65)  // EX_DATAERR
            case .success(let mappings):
                try withStore(configFile) { try $0.mappings.addMappings(mappings) }
                print("imported \(mappings.count) mappings")
            }
        }
    }
}

// With no arguments, as web servers run it (CGI, mod_fcgid, spawn-fcgi, systemd), go
// straight to `serve`: the argument parser's reflection costs milliseconds per CGI process.
if CommandLine.arguments.count == 1 {
    do {
        try serve(config: nil, listen: nil, workers: nil, socketMode: "660")
    } catch let code as ExitCode {
        exit(code.rawValue)
    } catch {
        Log.shared.error("cannot serve", ["error": .string(String(describing: error))])
        exit(1)
    }
    exit(0)
} else {
    MCPFastCGI.main()
}
