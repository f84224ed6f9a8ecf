import GatewayStore
import ArgumentParser
import EntraAuth
import FoundationEssentials
import MCPGateway
import MCPJSON
import GatewaySupport

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
            writeStandardError("dev-token: this config is not in development mode (auth.mode is \"\(cfg.auth.mode.rawValue)\")\n")
            throw ExitCode(64)
        }
        guard let tid = tenant ?? cfg.auth.allowedTenants.first, let aud = audience ?? cfg.auth.audiences.first else {
            writeStandardError("dev-token: give --tenant and --audience\n")
            throw ExitCode(64)
        }
        guard (1...86_400).contains(ttl) else { throw ValidationError("--ttl must be 1 to 86400 seconds") }
        let key = try DevSigningKey.loadOrCreate(stateDirectory: cfg.stateDirectory)
        let list = { (s: String) in s.split(separator: ",").map { $0.trimmingASCIISpaces() }.filter { !$0.isEmpty } }
        var extra = JSONObject()
        if let clientCapabilities { extra["xms_cc"] = JSONValue(list(clientCapabilities)) }
        let token = try DevTokenMinter(key: key).mint(tenantId: tid, objectId: oid, audience: aud, scopes: list(scopes),
                                                      roles: list(roles), name: name, ttl: ttl, extraClaims: extra)
        print(token)
    }
}
