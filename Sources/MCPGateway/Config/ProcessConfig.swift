import GatewaySupport
import FoundationEssentials
import Glibc
import MCPJSON

/// What the process needs from the config file: its logging, worker threads and shutdown grace, and the
/// instances it serves, each a complete `GatewayConfig` of its own. Never without an instance: a file
/// without `instances` serves one, named "default".
public struct ProcessConfig: Sendable {
    /// The file it was read from; nil when parsed from an object.
    public var path: String?
    public var logLevel: Log.Level = .info
    /// `server.workers` when the file sets it, else twice the processors (at least 4), counted
    /// only when asked for: the count reads cgroup files, which a CGI process has no use for.
    public var workers: Int {
        get { configuredWorkers ?? max(4, 2 * ProcessInfo.processInfo.activeProcessorCount) }
        set { configuredWorkers = newValue }
    }
    private var configuredWorkers: Int?
    /// `server.running_workers` when the file sets it, else the processors: at most this many
    /// workers run request work at once, the others wait, and take over while one waits on an
    /// upstream, the database or a slow peer (FastCGI's RunPermits).
    public var runningWorkers: Int {
        get { configuredRunningWorkers ?? max(1, ProcessInfo.processInfo.activeProcessorCount) }
        set { configuredRunningWorkers = newValue }
    }
    private var configuredRunningWorkers: Int?
    public var shutdownGraceSeconds = 10.0
    public var instances: [GatewayConfig] = []

    /// `limits` is a process-wide section, so every instance has the same; the FastCGI and CGI fronts read it here.
    public var maxBodyBytes: Int { instances[0].limits.maxBodyBytes }
    public var bodyTimeoutSeconds: Double { Double(instances[0].limits.bodyTimeoutSeconds) }

    /// Loads a config file, then applies environment overrides. All problems are reported together.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ProcessConfig {
        guard let contents = readWholeFile(path) else {
            throw ConfigErrors([ConfigError("", "cannot read the config file \(path)")])
        }
        var config = try parse(contents: contents, path: path, environment: environment)
        config.path = path
        return config
    }

    /// The largest config file read; the parser refuses anything longer.
    static let maxFileBytes = 1 << 20

    /// The file's bytes with plain open/read (Foundation's file reading costs a CGI start about
    /// 0.4 M instructions), stopping one byte past `maxFileBytes`; nil when it cannot be read.
    static func readWholeFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 || out.count > maxFileBytes { return out }
            out += chunk[..<n]
        }
    }

    /// A config file's bytes, read as `load` reads them; `path` only names the file in errors.
    package static func parse(contents: [UInt8], path: String, environment: [String: String]) throws -> ProcessConfig {
        let value: JSONValue
        do {
            value = try JSONParser.parse(contents, limits: JSONLimits(maxDepth: 16, maxBytes: maxFileBytes))
        } catch {
            throw ConfigErrors([ConfigError("", "\(path) is not valid JSON: \(error)")])
        }
        guard let object = value.objectValue else { throw ConfigErrors([ConfigError("", "\(path) must hold a JSON object")]) }
        return try parse(object, environment: environment)
    }

    /// Settings that belong to the process, not to an instance: they may appear only at the top level.
    /// An instance name: 1-63 bytes, lower-case ASCII letters, digits, '-' and '_', not starting
    /// with '-' or '_' (the rule `^[a-z0-9][a-z0-9_-]{0,62}$`).
    static func isInstanceName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        func alnum(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) }
        guard (1...63).contains(b.count), alnum(b[0]) else { return false }
        return b.dropFirst().allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    static let processOnlyKeys = ["limits", "state_dir", "logging", "metrics"]
    static let processOnlyServerKeys = ["workers", "running_workers", "shutdown_grace_seconds"]

    public static func parse(_ root: JSONObject, environment: [String: String] = [:]) throws -> ProcessConfig {
        var process = ProcessConfig()
        guard let listValue = root["instances"] else {
            let only = try GatewayConfig.parseInstance(root, environment: environment, process: &process)
            process.instances = [only]
            return process
        }
        guard let list = listValue.objectValue, !list.isEmpty else {
            throw ConfigErrors([ConfigError("instances", "must be an object of named instances, e.g. {\"client-a\": {…}}")])
        }
        var base = root
        base["instances"] = nil
        var errors: [ConfigError] = []
        var configs: [GatewayConfig] = []
        for (name, value) in list {
            let at = "instances.\(name)"
            guard Self.isInstanceName(name) else {
                errors.append(ConfigError(at, "instance names are 1-63 lower-case letters, digits, '-' or '_'")); continue
            }
            guard let own = value.objectValue else { errors.append(ConfigError(at, "must be an object")); continue }
            var merged = base
            for (key, v) in own {
                if processOnlyKeys.contains(key) {
                    errors.append(ConfigError("\(at).\(key)", "is a process-wide setting: set it at the top level"))
                } else if key == "server", let ownServer = v.objectValue {
                    // Instances share the process's server block and override their own keys (mcp_path, public_url, …).
                    var server = base["server"]?.objectValue ?? JSONObject()
                    for (k, sv) in ownServer {
                        if processOnlyServerKeys.contains(k) {
                            errors.append(ConfigError("\(at).server.\(k)", "is a process-wide setting: set it in the top-level server block"))
                        }
                        server[k] = sv
                    }
                    merged[key] = .object(server)
                } else {
                    merged[key] = v
                }
            }
            // A shared store file would merge the instances' namespaces: each gets its own unless it names one.
            if own["store"] == nil, var store = merged["store"]?.objectValue {
                store["path"] = nil
                merged["store"] = .object(store)
            }
            do {
                // Environment overrides are for single-instance setups; several instances would all inherit them.
                var c = try GatewayConfig.parseInstance(merged, environment: [:], process: &process)
                c.instanceName = name
                // One instance keeps the single-instance file (mcp-fcgi.db): its blocks, mappings and
                // sessions must survive a config that merely names it.
                if c.storePath == nil && list.count > 1 { c.storePath = c.stateDirectory + "/instance-\(name).db" }
                configs.append(c)
            } catch let e as ConfigErrors {
                errors += e.errors.map { ConfigError($0.path.isEmpty ? at : "\(at).\($0.path)", $0.problem) }
            }
        }
        for (i, a) in configs.enumerated() {
            for b in configs[(i + 1)...] {
                if a.server.mcpPath == b.server.mcpPath {
                    errors.append(ConfigError("instances.\(b.instanceName).server.mcp_path", "\(b.server.mcpPath) is already the path of instance \(a.instanceName)"))
                }
                if a.storeLocation == b.storeLocation {
                    errors.append(ConfigError("instances.\(b.instanceName).store.\(b.storeEngine == .sqlite ? "path" : "url")", "is also the store of instance \(a.instanceName): each instance needs its own"))
                }
                let shared = Set(a.auth.audiences).intersection(b.auth.audiences)
                if !shared.isEmpty {
                    errors.append(ConfigError("instances.\(b.instanceName).auth.audiences",
                        "\(shared.sorted().joined(separator: ", ")) is also an audience of instance \(a.instanceName): give each instance its own app registration, so a token for one is refused by the other"))
                }
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        process.instances = configs
        return process
    }
}
