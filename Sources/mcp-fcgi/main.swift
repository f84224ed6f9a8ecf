import GatewayStore
import ArgumentParser
import FoundationEssentials
import Glibc
import GatewayCrypto
import GatewaySupport
import MCPGateway

struct MCPFastCGI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp-fcgi",
        abstract: "MCP tools behind nginx or Apache, as a FastCGI (or CGI) application.",
        version: GatewayVersion.string,
        subcommands: [Serve.self, DevToken.self, CheckConfig.self, Doctor.self, BlockCommand.self, UnblockCommand.self, BlocksCommand.self, AuditCommand.self, MappingCommand.self, OAuthCommand.self, EntraCommand.self, APIKeyCommand.self, StoreCommand.self],
        defaultSubcommand: Serve.self)
}

// First, before anything else uses OpenSSL (CryptoProcess says why).
CryptoProcess.skipCleanupAtExit()

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
