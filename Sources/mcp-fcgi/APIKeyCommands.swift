import ArgumentParser
import EntraAuth
import FoundationEssentials
import GatewayStore
import GatewaySupport
import MCPGateway

/// `apikey create|list|revoke`: service-to-service keys for the `api_key` provider.
struct APIKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apikey", abstract: "Service-to-service API keys (the api_key provider): create, list, revoke.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a key and print it once; only a keyed hash is kept.")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "What the key is for, shown in listings.") var name: String
        @Option(help: "The tenant id (GUID) the key's caller belongs to; must be an allowed tenant.") var tenant: String
        @Option(help: "App roles, comma-separated (e.g. MCP.User).") var roles: String = ""
        @Option(help: "When the key stops working: an ISO 8601 time or a duration (90d, 12h).") var expires: String

        func run() throws {
            let cfg = try configFile.single()
            guard cfg.auth.providers?.contains(where: { $0.type == "api_key" }) == true else {
                throw ValidationError("instance \(cfg.instanceName) has no {\"type\": \"api_key\"} in auth.providers: its keys would not be accepted")
            }
            let tenant = self.tenant.lowercased()
            guard IssuerTenantCheck.isGUID(tenant) else { throw ValidationError("--tenant must be a tenant id (GUID)") }
            guard cfg.auth.acceptAnyTenant || cfg.auth.allowedTenants.contains(where: { $0.lowercased() == tenant }) else {
                throw ValidationError("tenant \(tenant) is not allowed in instance \(cfg.instanceName)")
            }
            let roleList = roles.split(separator: ",").map { $0.trimmingASCIISpaces() }.filter { !$0.isEmpty }
            guard !name.isEmpty, !name.contains(where: \.isNewline) else { throw ValidationError("--name must be one line of text") }
            let now = Int64(Date().timeIntervalSince1970)
            let until = try untilArgument(expires)
            guard until > now else { throw ValidationError("--expires must lie in the future") }
            let issuer = try APIKeyIssuer(stateDirectory: cfg.stateDirectory)
            let (key, record) = try issuer.create(name: name, tenant: tenant, roles: roleList, expires: until, now: now)
            try withStore(cfg) { stores in
                guard let keys = stores.apiKeys else { throw ValidationError("this store keeps no API keys") }
                try keys.addAPIKey(record)
            }
            writeStandardError("created API key \(record.id) (\(name)) for tenant \(tenant), expires \(Timestamp.iso8601(Double(until))); it is shown once:\n")
            print(key)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every key: id, name, tenant, roles, expiry, state.")
        @OptionGroup var configFile: ConfigFileOption
        func run() throws {
            let now = Int64(Date().timeIntervalSince1970)
            for k in try withStore(configFile, { try $0.apiKeys?.apiKeys() ?? [] }) {
                let state = k.revoked != nil ? "revoked" : (k.expires.map { $0 <= now } == true ? "expired" : "active")
                print([k.id, k.name, k.tenant, k.roles.joined(separator: ","), k.expires.map { Timestamp.iso8601(Double($0)) } ?? "-", state]
                    .joined(separator: "\t"))
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a key at once, in every process.")
        @OptionGroup var configFile: ConfigFileOption
        @Argument(help: "The key's id (from apikey list).") var id: String
        func run() throws {
            let revoked = try withStore(configFile) { try $0.apiKeys?.revokeAPIKey(id: id.lowercased(), at: Int64(Date().timeIntervalSince1970)) ?? false }
            guard revoked else { print("no active API key \(id)"); throw ExitCode(1) }
            print("revoked API key \(id)")
        }
    }
}
