import GatewayStore
import ArgumentParser
import FoundationEssentials
import Glibc
import GatewaySupport
import MCPGateway

/// The environment, read once, straight from `environ`: Foundation builds a new dictionary on
/// every `ProcessInfo.environment` (about 0.85 M instructions the first time, more than this
/// loop), which a CGI process would otherwise pay on every start. The first of duplicate names
/// wins, as with getenv; an entry without `=` is no variable.
let processEnvironment: [String: String] = {
    var variables: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let bytes = UnsafeRawBufferPointer(start: pointer, count: strlen(pointer))
        if let equals = bytes.firstIndex(of: UInt8(ascii: "=")) {
            let name = String(decoding: bytes[..<equals], as: UTF8.self)
            if variables[name] == nil { variables[name] = String(decoding: bytes[(equals + 1)...], as: UTF8.self) }
        }
        entry += 1
    }
    return variables
}()

/// The config path: --config, else $MCP_FCGI_CONFIG, else the Debian-style default.
func resolveConfigPath(_ option: String?) -> String {
    option ?? processEnvironment["MCP_FCGI_CONFIG"] ?? "/etc/mcp-fcgi/config.json"
}

func loadConfig(_ option: String?) throws -> ProcessConfig {
    do {
        return try ProcessConfig.load(path: resolveConfigPath(option), environment: processEnvironment)
    } catch let e as ConfigErrors {
        writeStandardError(e.description + "\n")
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
    /// Run as root, the process becomes the state directory's owner here (see `actAsStateOwner`).
    func instances(all: Bool = false) throws -> [GatewayConfig] {
        let list = try loadConfig(config).instances
        if let instance {
            guard let c = list.first(where: { $0.instanceName == instance }) else {
                throw ValidationError("no instance \(instance) in the config; it has \(list.map(\.instanceName).joined(separator: ", "))")
            }
            return try actAsStateOwner([c])
        }
        guard list.count == 1 || all else {
            throw ValidationError("this config has several instances (\(list.map(\.instanceName).joined(separator: ", "))): name one with --instance")
        }
        return try actAsStateOwner(list)
    }

    func single() throws -> GatewayConfig { try instances()[0] }
}

/// An operator command run as root (sudo) reads the config as root, then becomes the user who owns
/// the state directories before it opens anything in them: that user could have planted links there.
func actAsStateOwner(_ configs: [GatewayConfig]) throws -> [GatewayConfig] {
    do {
        try StateDirectory.becomeOwner(of: configs.map(\.stateDirectory))
    } catch let e as FileSystemError {
        writeStandardError(e.description + "\n")
        throw ExitCode(77)  // EX_NOPERM
    }
    return configs
}

/// Opens the shared store for an operator command, as `serve` does. Run as root, the files
/// it creates are handed to the user the service runs as, so the service can still open them.
func withStore<T>(_ option: ConfigFileOption, _ body: (StateStores) throws -> T) throws -> T {
    try withStore(try option.single(), body)
}

func withStore<T>(_ cfg: GatewayConfig, _ body: (StateStores) throws -> T) throws -> T {
    let result = try body(try InstanceBuilder.openStores(for: cfg, durable: true))
    InstanceBuilder.handStateFilesToServiceUser(for: cfg)
    return result
}

/// `--until`: an ISO 8601 time, or a duration ahead from now; in whole seconds.
func untilArgument(_ text: String) throws -> Int64 {
    switch try TimeArgument(text, option: "--until") {
    case .time(let t): return Int64(t)
    case .duration(let seconds): return Int64(Date().timeIntervalSince1970) + seconds
    }
}

/// `--since`: an ISO 8601 time, or a duration back from now.
func sinceArgument(_ text: String) throws -> Double {
    switch try TimeArgument(text, option: "--since") {
    case .time(let t): return t
    case .duration(let seconds): return Date().timeIntervalSince1970 - Double(seconds)
    }
}

/// What `--until` and `--since` take: an ISO 8601 time, or a duration such as 90m, 12h, 7d, 30s.
enum TimeArgument {
    case time(Double)
    case duration(Int64)

    init(_ text: String, option: String) throws {
        if let t = Timestamp.parse(text) { self = .time(t); return }
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = text.last.flatMap({ units[$0] }), let n = Int64(text.dropLast()), n > 0, n < 1 << 40 else {
            throw ValidationError("\(option) takes an ISO 8601 time or a duration such as 90m, 12h, 7d")
        }
        self = .duration(n * unit)
    }
}
