import GatewayStore
import ArgumentParser
import EntraAuth
import FoundationEssentials
import GatewaySupport
import MCPGateway

/// Which principal a block names: exactly one of --user, --tenant, --client-app.
struct PrincipalOption: ParsableArguments {
    @Option(help: "User object id (oid), or another provider's qualified id (google:…, github:…, apikey:…, oidc:<name>:…).")
    var user: String?
    @Option(help: "Tenant id (tid).") var tenant: String?
    @Option(name: .customLong("client-app"), help: "Client application id (azp/appid).") var clientApp: String?

    func target() throws -> (Block.Kind, String) {
        let given = [(Block.Kind.user, user), (.tenant, tenant), (.clientApp, clientApp)].compactMap { k, v in v.map { (k, $0) } }
        guard given.count == 1, let (kind, id) = given.first else {
            throw ValidationError("name exactly one of --user, --tenant or --client-app")
        }
        guard IssuerTenantCheck.isGUID(id) || (kind == .user && Principal.isQualifiedUserID(id)) else {
            throw ValidationError("\(id) is not an Entra id (GUID)" + (kind == .user ? " nor a qualified user id such as google:1234" : ""))
        }
        return (kind, kind == .user ? Principal.canonicalUserID(id) : id.lowercased())
    }
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
        if let until { end = try untilArgument(until) }
        // Without --instance a block covers every instance: cutting access is an emergency.
        for cfg in try configFile.instances(all: true) {
            try withStore(cfg) { try $0.blocks.addBlock(Block(kind: kind, id: id, until: end, reason: reason)) }
            print("blocked \(kind.rawValue) \(id) in instance \(cfg.instanceName)" + (end.map { " until \(Date(timeIntervalSince1970: TimeInterval($0)))" } ?? ""))
        }
    }
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
                let until = b.until.map { Timestamp.iso8601(Double($0)) } ?? "until unblocked"
                print("\(cfg.instanceName)\t\(b.kind.rawValue)\t\(b.id)\t\(until)\t\(b.reason ?? "")")
            }
        }
    }
}
