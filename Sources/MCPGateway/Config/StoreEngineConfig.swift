import FoundationEssentials
import GatewayStore
import PostgresStore

/// Which engine holds the shared state (`store.engine`): the embedded SQLite file for one host,
/// or a PostgreSQL server every host of the site shares.
public enum StoreEngineConfig: Equatable, Sendable {
    case sqlite
    case postgres(Postgres)

    public struct Postgres: Equatable, Sendable {
        /// Checked when the config is read: no password inside, TLS verified to a remote host.
        public var settings: PostgresSettings
        /// Read when the store is opened, so the password is in no config value; without it,
        /// libpq takes `PGPASSWORD` from the environment.
        public var passwordFile: String?

        /// The settings with the password read from its file.
        public func resolved() throws -> PostgresSettings {
            var s = settings
            if let passwordFile { s.password = try PostgresSettings.readPasswordFile(passwordFile) }
            return s
        }
    }

    /// Reads `engine`, `url`, `password_file` and the pool's limits; `path` belongs to SQLite only.
    static func parse(_ st: ConfigSection, storePath: String?) -> StoreEngineConfig {
        let engine = st.string("engine", default: "sqlite")
        let url = st.string("url"), passwordFile = st.string("password_file")
        switch engine {
        case "sqlite":
            if url != nil { st.fail("url", "is for store.engine \"postgres\"") }
            if passwordFile != nil { st.fail("password_file", "is for store.engine \"postgres\"") }
            return .sqlite
        case "postgres":
            if storePath != nil { st.fail("path", "is the SQLite file; with store.engine \"postgres\" the server is store.url") }
            if let p = passwordFile, !p.hasPrefix("/") { st.fail("password_file", "must be an absolute path") }
            if let problem = PostgresSettings.libraryProblem {
                st.fail("engine", "\"postgres\" \(problem)")
                return .sqlite
            }
            guard let url else {
                st.fail("url", "is required with store.engine \"postgres\" (a libpq connection string or postgresql:// URI)")
                return .sqlite
            }
            do {
                var settings = try PostgresSettings(url: url)
                settings.poolSize = st.int("pool_size", default: settings.poolSize, range: 1...64)
                settings.connectTimeoutSeconds = st.int("connect_timeout_seconds", default: settings.connectTimeoutSeconds, range: 2...60)
                settings.statementTimeoutMilliseconds = st.int("statement_timeout_ms", default: settings.statementTimeoutMilliseconds,
                                                               range: 100...60_000)
                settings.poolWaitMilliseconds = st.int("pool_wait_ms", default: settings.poolWaitMilliseconds, range: 10...60_000)
                return .postgres(Postgres(settings: settings, passwordFile: passwordFile))
            } catch {
                st.fail("url", "\(error)")
                return .sqlite
            }
        default:
            st.fail("engine", "must be \"sqlite\" or \"postgres\", not \"\(engine)\"")
            return .sqlite
        }
    }
}
