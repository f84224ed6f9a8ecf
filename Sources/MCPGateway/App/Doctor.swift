import SharedMetrics
import EntraAuth
import FoundationEssentials
import Glibc
import GatewayStore
import PostgresStore
import UpstreamHTTP
import GatewaySupport

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
    /// The verifier's configuration, as the instance builds it: the keys checked are the keys served with.
    let entra: EntraConfiguration
    let http: HTTPFetching
    /// For the token endpoint, Power BI and backends; nil: libcurl with each section's options.
    let upstream: HTTPClient?
    let environment: [String: String]

    public init(config: GatewayConfig, http: HTTPFetching? = nil, upstream: HTTPClient? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.config = config
        self.entra = InstanceBuilder.entraConfiguration(for: config)
        self.upstream = upstream
        self.environment = environment
        var options = entra.http
        options.connectTimeoutMilliseconds = 5_000
        options.totalTimeoutMilliseconds = 10_000
        self.http = http ?? CurlHTTPFetcher(options: options)
    }

    public func run() -> [Check] {
        var checks: [Check] = [stateDirectory()]
        if checks[0].outcome == .pass {
            checks.append(store())
            checks.append(metricsFile())
        } else {
            // Each would fail for the same reason, or create files in the wrong place.
            for name in ["shared store", "metrics file"] {
                checks.append(Check(name: name, outcome: .skip, detail: "needs the state directory", milliseconds: nil))
            }
        }
        if !config.auth.trustsEntra {
            checks.append(Check(name: "signing keys", outcome: .skip, detail: "entra is not among auth.providers", milliseconds: nil))
        } else if config.auth.mode == .development && checks[0].outcome != .pass {
            checks.append(Check(name: "signing keys", outcome: .skip, detail: "the dev key lives in the state directory", milliseconds: nil))
        } else {
            checks += signingKeys()
        }
        checks += providers()
        checks += upstreams()
        // Run as root, the files the checks created must stay openable by the service.
        InstanceBuilder.handStateFilesToServiceUser(for: config)
        return checks
    }

    /// A plain-text table, one check per line.
    public static func table(_ checks: [Check]) -> String {
        let width = max(14, checks.map(\.name.count).max() ?? 0)
        // Cut or padded with spaces to `n` characters, as NSString's padding(toLength:withPad:startingAt:) did.
        func pad(_ s: String, _ n: Int) -> String {
            s.count >= n ? String(s.prefix(n)) : s + String(repeating: " ", count: n - s.count)
        }
        var out = pad("CHECK", width) + "  RESULT  TIME     DETAIL\n"
        for c in checks {
            let time = c.milliseconds.map { "\($0) ms" } ?? "-"
            out += pad(c.name, width) + "  " + pad(c.outcome.rawValue, 6) + "  " + pad(time, 7) + "  " + c.detail + "\n"
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
            var isDirectory = false
            if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) {
                // Made by root it would lock the service out: leave it to the service user.
                guard geteuid() != 0 else {
                    throw ServerError("\(dir) does not exist: create it owned by the service user (install -d -o mcp-fcgi -m 0700 \(dir); systemd's StateDirectory= does it)")
                }
                try StateDirectory.ensure(dir)
            }
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
            let store = try InstanceBuilder.openStores(for: config, durable: true).health
            try store.probeWrite()
            let health = try store.health()
            if let alarm = StoreCeiling(maxBytes: config.storeMaxBytes).alarm(health) { throw ServerError(alarm) }
            // A crash's damaged journal tail is kept aside, not dropped: an operator must look at it.
            let journal = JournaledAuditLog.status(forStore: config.resolvedStorePath)
            if let torn = journal.tornTails.first {
                throw ServerError("\(journal.tornTails.count) damaged audit journal tail(s) kept in \(journal.directory)/torn " +
                                  "(first: \(torn)); the records before each are in the store; inspect, then remove them")
            }
            var schema = ""
            if let postgres = store as? PostgresStore {
                let missing = try postgres.missingPrivileges()
                guard missing.isEmpty else {
                    throw ServerError("the PostgreSQL role lacks \(missing.joined(separator: ", ")): grant them to the gateway's role")
                }
                schema = ", schema version \(try postgres.schemaVersion), the role holds every privilege it needs"
            }
            return "\(config.storeLocation) takes writes (\(health.bytes) of at most \(config.storeMaxBytes) bytes\(schema)); " +
                "\(journal.pendingJournals) audit journal(s) waiting to be moved in, holding \(journal.pendingRecords) record(s)" +
                (journal.oldestPendingAge(now: Date().timeIntervalSince1970).map { ", the oldest written \($0) s ago" } ?? "")
        }
        return check("shared store", r, ms)
    }

    func metricsFile() -> Check {
        let (r, ms) = timed {
            let counters = try SharedCounters(path: GatewayMetrics.countersPath(stateDirectory: config.stateDirectory))
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
        let fetcher = JWKSFetcher(http: http, options: entra.http)
        var checks: [Check] = []
        var jwksURI = entra.jwksURI
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

    /// Each `oidc` provider's discovery (its issuer exactly) and key set, as its verifier will fetch them.
    func providers() -> [Check] {
        let fetcher = JWKSFetcher(http: http, options: entra.http)
        return config.resolvedProviders().compactMap { provider -> Check? in
            guard case .oidc(let o) = provider else { return nil }
            let (r, ms) = timed {
                let uri = try o.jwksURI ?? fetcher.discover(issuer: o.issuer).jwksURI
                let set = try fetcher.fetchKeySet(jwksURI: uri)
                return "\(o.issuer): \(uri) holds \(set.keys.keys.count) usable signing key(s)"
            }
            return check("provider oidc:\(o.name)", r, ms,
                         fix: "check outbound HTTPS to \(o.issuer) and that its discovery document names exactly that issuer")
        }
    }

    func client(caBundle: String?, insecure: Bool, timeout: Int) -> HTTPClient {
        if let upstream { return upstream }
        var options = CurlHTTPClientOptions.gateway
        options.caBundlePath = caBundle
        options.allowInsecureHTTPForTesting = insecure
        options.connectTimeoutSeconds = 5
        options.totalTimeoutSeconds = Double(timeout)
        options.maxRetries = 0
        return CurlHTTPClient(options: options)
    }

    /// The gateway's own token (client credentials), Power BI with it, and each backend.
    func upstreams() -> [Check] {
        var checks: [Check] = []
        var powerBIToken: String?
        if let credential = config.credential {
            let tenant = config.auth.allowedTenants.first
            let scope = config.powerBI?.scope ?? config.backends.values.compactMap(\.scope).sorted().first
                ?? "https://graph.microsoft.com/.default"
            let (r, ms) = timed {
                guard let tenant else { throw ServerError("no tenant to ask a token in: set auth.tenant_id") }
                // Power BI's login host when Power BI is configured: the token asked for is its.
                let broker = try EntraTokenBroker.forCredential(
                    credential, of: config, fallbackAuthority: config.powerBI?.authority,
                    http: client(caBundle: credential.caBundle, insecure: credential.allowInsecureHTTPForTesting, timeout: credential.timeoutSeconds),
                    environment: environment)
                let token = try broker.token(TokenRequest(tenantId: tenant, scopes: [scope], grant: .clientCredentials))
                if scope == config.powerBI?.scope { powerBIToken = token.accessToken }
                // Never the token itself: only that one came and how long it lives.
                return "client credentials for \(scope) in tenant \(tenant): token valid for \(Int(token.expiresAt - Date().timeIntervalSince1970)) s"
            }
            checks.append(check("token endpoint", r, ms, fix: "check credential.client_id, the secret or certificate, and outbound HTTPS to the authority"))
        } else {
            checks.append(Check(name: "token endpoint", outcome: .skip,
                                detail: "no credential section (needed only by tools that call upstreams)", milliseconds: nil))
        }
        if let pbi = config.powerBI {
            if let token = powerBIToken {
                let url = pbi.apiBase + "/groups?$top=1"
                let (r, ms) = timed {
                    let response = try client(caBundle: pbi.caBundle, insecure: pbi.allowInsecureHTTPForTesting, timeout: pbi.timeoutSeconds)
                        .send(UpstreamRequest(method: "GET", url: url, headers: [("Authorization", "Bearer " + token)]))
                    guard response.status == 200 else {
                        throw ServerError("\(pbi.apiBase) answered HTTP \(response.status) to the gateway's own token: allow service principals in the Power BI tenant settings and add the app to the workspaces")
                    }
                    return "\(pbi.apiBase) answers the gateway's token (HTTP 200)"
                }
                checks.append(check("Power BI", r, ms, fix: "check outbound HTTPS to the Power BI API and powerbi.ca_bundle"))
            } else {
                checks.append(Check(name: "Power BI", outcome: .skip, detail: "no token from the token endpoint", milliseconds: nil))
            }
        }
        for backend in config.backends.values.sorted(by: { $0.name < $1.name }) {
            let (r, ms) = timed {
                // Reachability only: without credentials the backend may well answer 401.
                let response = try client(caBundle: backend.caBundle, insecure: backend.allowInsecureHTTPForTesting,
                                          timeout: Int(backend.timeoutSeconds.rounded(.up)))
                    .send(UpstreamRequest(method: "GET", url: (backend.baseURL.hasSuffix("/") ? String(backend.baseURL.dropLast()) : backend.baseURL)
                                                              + backend.userInfoPath))
                guard response.status < 500 else { throw ServerError("\(backend.baseURL) answered HTTP \(response.status)") }
                return "\(backend.baseURL) answers (HTTP \(response.status) without credentials)"
            }
            checks.append(check("backend \(backend.name)", r, ms, fix: "check the backend's base_url, its TLS certificate (ca_bundle) and that it is up"))
        }
        return checks
    }

    private func check(_ name: String, _ r: Result<String, Error>, _ ms: Int, fix: String? = nil) -> Check {
        switch r {
        case .success(let detail): return Check(name: name, outcome: .pass, detail: detail, milliseconds: ms)
        case .failure(let e): return Check(name: name, outcome: .fail, detail: "\(e)" + (fix.map { "; \($0)" } ?? ""), milliseconds: ms)
        }
    }
}
