import ArgumentParser
import EntraAuth
import FoundationEssentials
import GatewayStore
import GatewaySupport
import MCPGateway
import MCPJSON

/// The authorization front's clients and grants, for operators.
struct OAuthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oauth", abstract: "The OAuth front's registered clients and users' grants (instances with an oauth section).",
        subcommands: [Clients.self, RemoveClient.self, Grants.self, Revoke.self])

    struct Clients: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List registered clients and cached client metadata documents.")
        @OptionGroup var configFile: ConfigFileOption
        func run() throws {
            let cfg = try configFile.single()
            for s in cfg.oauth?.clients ?? [] {
                print("\(s.clientId)\tconfig\t\(s.clientName)\t\(s.redirectURIs.joined(separator: " "))")
            }
            for c in try withStore(cfg, { try $0.oauth.oauthClients() }) {
                let metadata = (try? JSONParser.parse(Array(c.metadataJSON.utf8)))
                let name = metadata?["client_name"]?.stringValue ?? ""
                let redirects = metadata?["redirect_uris"]?.arrayValue?.compactMap(\.stringValue).joined(separator: " ") ?? ""
                print("\(c.clientId)\t\(c.source.rawValue)\t\(name)\t\(redirects)\t\(Timestamp.iso8601(c.createdAt))")
            }
        }
    }

    struct RemoveClient: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove-client",
                                                        abstract: "Remove a registered client; every grant it holds is revoked.")
        @OptionGroup var configFile: ConfigFileOption
        @Argument(help: "The client id.") var clientId: String
        func run() throws {
            let removed = try withStore(configFile) { try $0.oauth.removeOAuthClient(id: clientId) }
            print(removed ? "removed \(clientId); its grants are revoked" : "no such client")
            if !removed { throw ExitCode(1) }
        }
    }

    struct Grants: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List live grants (who allowed which client).")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "Only this user's (object id).") var user: String?
        @Option(help: "Only this tenant's.") var tenant: String?
        func run() throws {
            for g in try withStore(configFile, { try $0.oauth.grants(tenant: tenant?.lowercased(), user: user?.lowercased()) }) {
                print("\(g.id)\t\(g.tenant)\t\(g.user)\t\(g.clientId)\t\(g.scopes.joined(separator: " "))\t\(Timestamp.iso8601(g.createdAt))")
            }
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a grant, or every grant of a user; their refresh tokens stop working at once.")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "A grant id (from `oauth grants`).") var grant: String?
        @Option(help: "A user's object id: every grant of theirs.") var user: String?
        @Option(help: "The user's tenant (with --user).") var tenant: String?
        func run() throws {
            let now = Date().timeIntervalSince1970
            switch (grant, user) {
            case (let id?, nil):
                let revoked = try withStore(configFile) { try $0.oauth.revokeGrant(id: id, now: now) }
                print(revoked ? "revoked grant \(id)" : "no live grant \(id)")
                if !revoked { throw ExitCode(1) }
            case (nil, let oid?):
                guard let tenant, IssuerTenantCheck.isGUID(tenant), IssuerTenantCheck.isGUID(oid) else {
                    throw ValidationError("--user needs --tenant; both are GUIDs")
                }
                let n = try withStore(configFile) { try $0.oauth.revokeGrants(tenant: tenant.lowercased(), user: oid.lowercased(), now: now) }
                print("revoked \(n) grant(s) of \(oid)")
            default:
                throw ValidationError("name exactly one of --grant or --user")
            }
        }
    }
}

/// What to register in Entra ID for an instance, printed ready to follow.
struct EntraCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "entra", abstract: "Help with the Entra ID app registrations.",
                                                    subcommands: [AppManifest.self])

    struct AppManifest: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "app-manifest",
            abstract: "Print the API app (App ID URI, scope, app roles), the gateway's redirect URI and the az commands that create them.")
        @OptionGroup var configFile: ConfigFileOption
        func run() throws {
            print(EntraSetup(config: try configFile.single()).text(), terminator: "")
        }
    }
}
