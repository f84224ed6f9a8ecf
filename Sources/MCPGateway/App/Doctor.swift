import EntraAuth
import Foundation

/// `mcp-fcgi doctor`: from this host, with this config, can the service do its job?
/// Each check says what it tried, whether it worked, and what to do if not.
public struct Doctor {
    public enum Outcome: String { case pass = "PASS", fail = "FAIL", skip = "SKIP" }

    public struct Check {
        public let name: String
        public let outcome: Outcome
        public let detail: String
        public let milliseconds: Int?
    }

    let config: GatewayConfig
    let http: HTTPFetching

    public init(config: GatewayConfig, http: HTTPFetching? = nil) {
        self.config = config
        var options = HTTPFetchOptions()
        options.caBundlePath = config.auth.caBundle
        options.allowInsecureHTTPForTesting = config.auth.allowInsecureHTTPForTesting
        options.connectTimeoutMilliseconds = 5_000
        options.totalTimeoutMilliseconds = 10_000
        self.http = http ?? CurlHTTPFetcher(options: options)
    }

    public func run() -> [Check] {
        var checks: [Check] = []
        checks.append(stateDirectory())
        checks.append(store())
        checks.append(metricsFile())
        checks += signingKeys()
        // The upstream sections (credential, powerbi, backends) add their checks here as they land.
        checks.append(Check(name: "token endpoint", outcome: .skip,
                            detail: "no client credential is configured (needed only by tools that call upstreams)", milliseconds: nil))
        handFilesToServiceUser()
        return checks
    }

    /// Run as root, the files the checks created go to the owner of the state directory,
    /// the user the service runs as, so the service can still open them.
    private func handFilesToServiceUser() {
        var st = stat()
        guard geteuid() == 0, stat(config.stateDirectory, &st) == 0, st.st_uid != 0 else { return }
        let store = config.resolvedStorePath
        for file in [store, store + "-wal", store + "-shm", config.stateDirectory + "/metrics.shm",
                     config.stateDirectory + "/" + DevSigningKey.fileName] {
            _ = chown(file, st.st_uid, st.st_gid)
        }
    }

    /// A plain-text table, one check per line.
    public static func table(_ checks: [Check]) -> String {
        let width = max(14, checks.map(\.name.count).max() ?? 0)
        var out = "CHECK".padding(toLength: width, withPad: " ", startingAt: 0) + "  RESULT  TIME     DETAIL\n"
        for c in checks {
            let time = c.milliseconds.map { "\($0) ms" } ?? "-"
            out += c.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + c.outcome.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0) + "  "
                + time.padding(toLength: 7, withPad: " ", startingAt: 0) + "  " + c.detail + "\n"
        }
        let failed = checks.filter { $0.outcome == .fail }.count
        out += failed == 0 ? "all checks passed\n" : "\(failed) check(s) failed\n"
        return out
    }

    // MARK: - checks

    private func timed(_ body: () throws -> String) -> (Result<String, Error>, Int) {
        let start = Date()
        let result = Result { try body() }
        return (result, Int(Date().timeIntervalSince(start) * 1000))
    }

    func stateDirectory() -> Check {
        let dir = config.stateDirectory
        let (r, ms) = timed {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let probe = dir + "/.doctor-\(getpid())"
            guard FileManager.default.createFile(atPath: probe, contents: Data("ok".utf8)) else {
                throw ServerError("cannot write in \(dir): give it to the user the service runs as (chown) or set state_dir")
            }
            unlink(probe)
            return "\(dir) is writable by uid \(geteuid())"
        }
        return check("state directory", r, ms)
    }

    func store() -> Check {
        let (r, ms) = timed {
            let health = try SQLiteStore(path: config.resolvedStorePath).health()
            return "\(config.resolvedStorePath) takes writes (\(health.bytes) bytes)"
        }
        return check("shared store", r, ms)
    }

    func metricsFile() -> Check {
        let (r, ms) = timed {
            let counters = try SharedCounters(path: config.stateDirectory + "/metrics.shm")
            return "\(counters.path) mapped; \(counters.liveProcesses) serving process(es) registered"
        }
        return check("metrics file", r, ms)
    }

    func signingKeys() -> [Check] {
        if config.auth.mode == .development {
            let (r, ms) = timed {
                _ = try DevSigningKey.loadOrCreate(stateDirectory: config.stateDirectory)
                return "development mode: the local dev key in \(config.stateDirectory) signs and verifies tokens"
            }
            return [check("signing keys", r, ms)]
        }
        var entra = EntraConfiguration(audiences: config.auth.audiences, allowedTenants: config.auth.allowedTenants,
                                       stateDirectory: config.stateDirectory)
        entra.authority = config.auth.authority
        entra.acceptAnyTenant = config.auth.acceptAnyTenant
        var options = HTTPFetchOptions()
        options.allowInsecureHTTPForTesting = config.auth.allowInsecureHTTPForTesting
        let fetcher = JWKSFetcher(http: http, options: options)
        var checks: [Check] = []
        var jwksURI = config.auth.jwksURI
        if jwksURI == nil {
            let url = OpenIDConfiguration.discoveryURL(authority: entra.authority, tenant: entra.resolvedMetadataTenant)
            let (r, ms) = timed {
                let found = try fetcher.discover(authority: entra.authority, tenant: entra.resolvedMetadataTenant)
                jwksURI = found.jwksURI
                return "\(url) names jwks_uri \(found.jwksURI)"
            }
            checks.append(check("OpenID discovery", r, ms, fix: "check outbound HTTPS to \(entra.authority), auth.authority and auth.tenant_id"))
        } else {
            checks.append(Check(name: "OpenID discovery", outcome: .skip, detail: "auth.jwks_uri is set", milliseconds: nil))
        }
        guard let uri = jwksURI else {
            checks.append(Check(name: "JWKS", outcome: .skip, detail: "no jwks_uri (discovery failed)", milliseconds: nil))
            return checks
        }
        let (r, ms) = timed {
            let set = try fetcher.fetchKeySet(jwksURI: uri)
            return "\(uri) holds \(set.keys.keys.count) usable signing key(s)"
        }
        checks.append(check("JWKS", r, ms, fix: "check outbound HTTPS to the key endpoint (and auth.ca_bundle behind a TLS-inspecting proxy)"))
        return checks
    }

    private func check(_ name: String, _ r: Result<String, Error>, _ ms: Int, fix: String? = nil) -> Check {
        switch r {
        case .success(let detail): return Check(name: name, outcome: .pass, detail: detail, milliseconds: ms)
        case .failure(let e): return Check(name: name, outcome: .fail, detail: "\(e)" + (fix.map { "; \($0)" } ?? ""), milliseconds: ms)
        }
    }
}
