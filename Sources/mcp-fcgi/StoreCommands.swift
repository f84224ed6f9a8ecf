import ArgumentParser
import FoundationEssentials
import GatewayStore
import MCPGateway
import PostgresStore

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store", abstract: "Move the shared state to another engine.", subcommands: [Migrate.self])

    struct Migrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy this instance's SQLite store (audit trail included) into PostgreSQL; then set store.engine \"postgres\".")
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "The PostgreSQL server: a libpq connection string or postgresql:// URI, without a password.") var to: String
        @Option(help: "A file (mode 0600) holding the role's password; else PGPASSWORD.") var passwordFile: String?
        @Flag(help: "Copy into a store that already holds rows (rows already there are kept).") var intoNonEmpty = false

        func run() throws {
            let cfg = try configFile.single()
            guard cfg.storeEngine == .sqlite else {
                throw ValidationError("this instance's store is already on PostgreSQL; run migrate with the config that names the SQLite store")
            }
            var settings = try PostgresSettings(url: to)
            if let passwordFile { settings.password = try PostgresSettings.readPasswordFile(passwordFile) }
            // Records still in the audit journals go into the SQLite store first, so they are copied too.
            try withStore(cfg) { stores in
                stores.audit.beginServing(background: false)
                stores.audit.endServing()
            }
            let source = try SQLiteStore(path: cfg.resolvedStorePath)
            let target = try PostgresStore(settings: settings)
            for (table, rows) in try target.copy(from: source, intoNonEmpty: intoNonEmpty) {
                print("\(table): \(rows) row(s) copied")
            }
            print("done: set store.engine \"postgres\" and store.url in the config of every host, then restart them")
        }
    }
}
