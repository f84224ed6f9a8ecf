import FastCGIFront
import GatewayStore
import ArgumentParser
import FoundationEssentials
import Glibc
import GatewaySupport
import MCPGateway

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

/// `serve`, callable without the argument parser (see main.swift).
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
    // Where to serve decides the worker count, so it is found first; its errors are reported
    // after the gateway is built, as they always were (a bad config is exit 78 before a bad --listen's 64).
    let addressLookup = Result<ListenAddress?, Error> {
        let activated = try ListenAddress.systemdActivated(environment: processEnvironment)
        if let listen { return try ListenAddress(parsing: listen) }
        if let activated { return activated }
        return FastCGIServer.stdinIsListeningSocket() ? .inherited : nil
    }
    // Without a listening socket this process answers one request as a CGI program.
    var answersOneCGIRequest = false
    if case .success(nil) = addressLookup { answersOneCGIRequest = true }
    // MCP_FCGI_WORKERS: the worker count for processes a web server starts with its own
    // environment (mod_fcgid's FcgidInitialEnv), where no --workers can be given.
    var environmentWorkers: Int?
    if let text = processEnvironment["MCP_FCGI_WORKERS"] {
        guard let n = Int(text), (1...256).contains(n) else {
            Log.shared.error("MCP_FCGI_WORKERS must be a whole number from 1 to 256")
            throw ExitCode(78)
        }
        environmentWorkers = n
    }
    let workerThreads = answersOneCGIRequest ? 1 : workers ?? environmentWorkers ?? cfg.workers
    let gateway: Gateway
    do {
        gateway = try Gateway.make(config: cfg, workerThreads: workerThreads)
    } catch {
        Log.shared.error("cannot start", ["error": .string(String(describing: error))])
        throw ExitCode(78)
    }
    for instance in cfg.instances where instance.auth.mode == .development {
        Log.shared.warning("DEVELOPMENT MODE: only tokens minted by `mcp-fcgi dev-token` are accepted; never expose this instance",
                           ["instance": .string(instance.instanceName)])
    }
    // Audit journals: those of processes that are gone are picked up now, this one's is moved
    // into the store in the background (a CGI process's at exit) and whatever is left at exit.
    for instance in gateway.instances { instance.stores.audit.beginServing(background: !answersOneCGIRequest) }
    defer { for instance in gateway.instances { instance.stores.audit.endServing() } }
    let address: ListenAddress?
    do { address = try addressLookup.get() } catch {
        Log.shared.error("\(error)")
        throw ExitCode(64)
    }
    guard let address else {
        throw ExitCode(CGIResponder(handler: gateway, maxBodyBytes: cfg.maxBodyBytes,
                                          bodyTimeoutSeconds: cfg.bodyTimeoutSeconds).respondOnce())
    }
    guard let mode = mode_t(socketMode, radix: 8), mode <= 0o777 else {
        Log.shared.error("--socket-mode must be octal, e.g. 660")
        throw ExitCode(64)
    }
    let server = FastCGIServer(handler: gateway, options: .init(
        workers: workerThreads, maxBodyBytes: cfg.maxBodyBytes,
        shutdownGrace: cfg.shutdownGraceSeconds, socketMode: mode, bodyTimeoutSeconds: cfg.bodyTimeoutSeconds,
        runningWorkers: cfg.runningWorkers))
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
