import GatewayStore
import ArgumentParser
import FoundationEssentials
import MCPGateway

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
            let start = try sinceArgument(since)
            for r in try withStore(configFile, { try $0.audit.audit(since: start, tenant: tenant?.lowercased(), limit: Int.max) }) {
                print(r.json)
            }
        }
    }
}
