import GatewayStore
import ArgumentParser
import MCPGateway
import PostgresStore

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a config file; print every problem with its location.")

    @OptionGroup var configFile: ConfigFileOption

    func run() throws {
        let path = resolveConfigPath(configFile.config)
        let cfg: ProcessConfig
        do {
            cfg = try ProcessConfig.load(path: path)
        } catch let e as ConfigErrors {
            for error in e.errors { print("\(path): \(error)") }
            print("\(e.errors.count) problem(s) found")
            throw ExitCode(78)  // EX_CONFIG
        }
        print("\(path): OK")
        var unreachable = false
        for i in cfg.instances {
            print("instance \(i.instanceName): \(i.server.mcpPath), auth \(i.auth.mode.rawValue), \(i.auth.allowedTenants.count) tenant(s), store \(i.storeLocation)")
            // A server is part of the config: it must answer, at a schema this build knows, to a role that may write.
            if case .postgres(let pg) = i.storeEngine {
                do { print("instance \(i.instanceName): store \(try PostgresStore.inspect(settings: try pg.resolved()))") } catch {
                    print("instance \(i.instanceName): store: \(error)")
                    unreachable = true
                }
            }
        }
        if unreachable { throw ExitCode(1) }
    }
}

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "From this host: state directory, store, metrics file, discovery and JWKS (and upstreams when configured); a pass/fail table.")

    @OptionGroup var configFile: ConfigFileOption

    func run() throws {
        // The first instance's, as always: --instance is not read here.
        let cfg = try actAsStateOwner([loadConfig(configFile.config).instances[0]])[0]
        let checks = MCPGateway.Doctor(config: cfg).run()
        print(MCPGateway.Doctor.table(checks), terminator: "")
        if checks.contains(where: { $0.outcome == .fail }) { throw ExitCode(1) }
    }
}
