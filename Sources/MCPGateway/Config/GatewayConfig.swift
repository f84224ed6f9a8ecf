import GatewaySupport
import EntraAuth
import FoundationEssentials
import MCPJSON

/// One instance's configuration: everything its gateway reads from the config file and environment.
/// The process's own settings, and the list of instances, are in `ProcessConfig`.
public struct GatewayConfig: Sendable {
    public struct Server: Sendable {
        public var name = "mcp-fcgi"
        public var mcpPath = "/mcp"
        /// The canonical URL clients use for the MCP endpoint; it is the OAuth resource identifier.
        public var publicURL = ""
        public var instructions: String?
    }

    public struct Limits: Sendable {
        public var maxBodyBytes = 1 << 20
        public var maxJSONDepth = 64
        public var toolsPageSize = 50
        /// How long a request body may take to arrive; a stalled one is answered 408 and frees its worker.
        public var bodyTimeoutSeconds = 10
    }

    public enum AuthMode: String, Sendable {
        /// Microsoft Entra ID tokens, keys from the tenant's JWKS.
        case entra
        /// Locally minted tokens (`mcp-fcgi dev-token`), signed by a key in the state directory.
        case development
    }

    public struct Auth: Sendable {
        public var mode: AuthMode = .entra
        public var authority = "https://login.microsoftonline.com"
        public var allowedTenants: [String] = []
        public var acceptAnyTenant = false
        public var audiences: [String] = []
        public var acceptV1Tokens = true
        public var acceptDelegatedTokens = true
        public var acceptAppOnlyTokens = false
        public var clockSkewSeconds = 120
        /// Verified tokens each process remembers (about 1 kB each); 0 verifies every request.
        public var tokenCacheEntries = 2_000
        public var jwksURI: String?
        public var jwksRefreshHours = 12
        public var caBundle: String?
        public var allowInsecureHTTPForTesting = false
        /// Scopes advertised in the metadata and challenges (e.g. "https://host/mcp/mcp.tools").
        public var scopesSupported: [String] = []
        /// Delegated tokens must carry every one of these `scp` values.
        public var requiredScopes: [String] = []
        public var resourceName: String?
        /// `auth.providers`; nil: Entra alone, as configured above (`IdentityProviderSettings`).
        public var providers: [IdentityProviderSettings]?

        /// Entra vouches for callers: `auth.providers` is absent or lists it.
        public var trustsEntra: Bool {
            providers?.contains { if case .entra = $0 { return true } else { return false } } ?? true
        }
    }

    public var server = Server()
    public var limits = Limits()
    public var allowedOrigins: [String] = []
    public var stateDirectory = "/var/lib/mcp-fcgi"
    public var auth = Auth()
    public var permissions = PermissionPolicy.standard
    /// The shared SQLite file; default `<state_dir>/mcp-fcgi.db`, or `<state_dir>/instance-<name>.db`
    /// for each of several instances (the loader fills that in).
    public var storePath: String?
    /// SQLite (the default) or a PostgreSQL server shared by several hosts (`StoreEngineConfig`).
    public var storeEngine: StoreEngineConfig = .sqlite
    /// Above this size the store raises its alarm (`StoreCeiling`).
    public var storeMaxBytes: Int64 = 1 << 30
    public var rateLimits = RateLimits()
    public var audit = Audit()
    public var sessions = Sessions()
    public var metrics = MetricsSettings()
    /// Customer web backends and their declared tools (`BackendConfig`).
    public var backends: [String: BackendSettings] = [:]
    /// The gateway's confidential client for upstream tokens (`credential` section; CredentialConfig.swift).
    public var credential: CredentialConfig?
    /// Power BI tools (`powerbi` section; PowerBIConfig.swift). Nil: not offered.
    public var powerBI: PowerBIConfig?
    /// The OAuth authorization front (`oauth` section; OAuthConfig.swift). Nil: absent or not enabled.
    public var oauth: OAuthConfig?

    /// Legacy-era `Mcp-Session-Id`, opt-in and never required: clients that do not echo
    /// the id (Claude.ai among them) are served statelessly as before.
    public struct Sessions: Sendable {
        public var enabled = false
        public var idleMinutes = 30
    }

    public struct Audit: Sendable {
        /// Keep argument values in the trail, not only their SHA-256. Off: arguments may hold personal data.
        public var includeArguments = false
        public var retentionDays = 90
        /// Records kept per minute, across the site's processes, of requests refused before
        /// authentication succeeded; the rest are only counted (`/metrics`). 0 keeps none.
        public var unauthenticatedPerMinute = 60
    }

    public struct RateLimits: Sendable, Equatable {
        /// Requests per minute and burst, per user and per tenant; 0 turns that limit off.
        public var userPerMinute = 120
        public var userBurst = 30
        public var tenantPerMinute = 1200
        public var tenantBurst = 200
    }

    /// The instance's name: "default" for a config without `instances`.
    public var instanceName = "default"
    /// Tenant records by lower-cased tenant id; every one of them is on the allow-list.
    public var tenants: [String: TenantRecord] = [:]
    /// `TrustedProxyConfig.swift`.
    public var trustedProxy = TrustedProxy()

    public var resolvedStorePath: String { storePath ?? stateDirectory + "/mcp-fcgi.db" }

    /// Where the shared state is, for messages and to tell two instances' stores apart.
    public var storeLocation: String {
        switch storeEngine {
        case .sqlite: return resolvedStorePath
        case .postgres(let pg): return "PostgreSQL " + pg.settings.displayURL
        }
    }

    public init() {}

    /// One instance from its (merged) object. The process-wide settings are read here too, into
    /// `process`, so that every problem is reported in the file's order; all instances see the same ones.
    static func parseInstance(_ root: JSONObject, environment: [String: String], process: inout ProcessConfig) throws -> GatewayConfig {
        var c = GatewayConfig()
        let top = ConfigSection(root, path: "")
        var errors: [ConfigError] = []

        let s = top.section("server")
        c.server.name = s.string("name", default: c.server.name)
        c.server.mcpPath = s.string("mcp_path", default: c.server.mcpPath)
        c.server.publicURL = s.string("public_url", default: "")
        c.server.instructions = s.string("instructions")
        let workers = s.int("workers", default: 0, range: 1...256)  // 0: not set (or refused), the default stays
        if workers > 0 { process.workers = workers }
        let runningWorkers = s.int("running_workers", default: 0, range: 1...256)
        if runningWorkers > 0 { process.runningWorkers = runningWorkers }
        process.shutdownGraceSeconds = Double(s.int("shutdown_grace_seconds", default: 10, range: 0...600))
        if !c.server.mcpPath.hasPrefix("/") || c.server.mcpPath.count < 2 || c.server.mcpPath.hasSuffix("/") {
            s.fail("mcp_path", "must be an absolute path such as /mcp, without a trailing slash")
        }
        if c.server.publicURL.isEmpty {
            s.fail("public_url", "is required: the URL clients use for the MCP endpoint, e.g. https://mcp.example.com/mcp")
        } else if let u = URLComponents(string: c.server.publicURL), let scheme = u.scheme, u.rangeOfHost != nil,
                  ["https", "http"].contains(scheme.lowercased()), u.fragment == nil, u.query == nil {
            if !u.path.hasSuffix(c.server.mcpPath) {
                s.fail("public_url", "must end with mcp_path (\(c.server.mcpPath))")
            }
        } else {
            s.fail("public_url", "must be an absolute http(s) URL without query or fragment")
        }
        errors += s.finish()

        let l = top.section("limits")
        c.limits.maxBodyBytes = l.int("max_body_bytes", default: c.limits.maxBodyBytes, range: 1024...(64 << 20))
        c.limits.maxJSONDepth = l.int("max_json_depth", default: c.limits.maxJSONDepth, range: 4...512)
        c.limits.toolsPageSize = l.int("tools_page_size", default: c.limits.toolsPageSize, range: 1...1000)
        c.limits.bodyTimeoutSeconds = l.int("body_timeout_seconds", default: c.limits.bodyTimeoutSeconds, range: 1...300)
        errors += l.finish()

        let o = top.section("origins")
        c.allowedOrigins = o.strings("allowed") ?? []
        errors += o.finish()

        c.stateDirectory = top.string("state_dir", default: c.stateDirectory)
        if !c.stateDirectory.hasPrefix("/") { top.fail("state_dir", "must be an absolute path") }

        let g = top.section("logging")
        let levelName = g.string("level", default: "info")
        if let level = Log.Level(name: levelName) { process.logLevel = level } else { g.fail("level", "must be debug, info, warning or error") }
        errors += g.finish()

        let st = top.section("store")
        c.storePath = st.string("path")
        if let p = c.storePath, !p.hasPrefix("/") { st.fail("path", "must be an absolute path") }
        c.storeMaxBytes = Int64(st.int("max_bytes", default: 1 << 30, range: 4096...Int.max))
        c.storeEngine = StoreEngineConfig.parse(st, storePath: c.storePath)
        errors += st.finish()

        c.rateLimits = parseRateLimits(top.section("rate_limits"), errors: &errors)

        let au = top.section("audit")
        c.audit.includeArguments = au.bool("include_arguments", default: false)
        c.audit.retentionDays = au.int("retention_days", default: 90, range: 1...3650)
        c.audit.unauthenticatedPerMinute = au.int("unauthenticated_per_minute", default: 60, range: 0...100_000)
        errors += au.finish()

        let se = top.section("sessions")
        c.sessions.enabled = se.bool("enabled", default: false)
        c.sessions.idleMinutes = se.int("idle_minutes", default: 30, range: 1...1440)
        errors += se.finish()

        let me = top.section("metrics"); c.metrics = MetricsSettings.parse(me); errors += me.finish()
        let cr = top.section("credential")
        c.credential = CredentialConfig.parse(cr)
        errors += cr.finish()
        let pb = top.section("powerbi")
        c.powerBI = PowerBIConfig.parse(pb, credential: c.credential)
        if c.powerBI != nil && c.credential == nil { top.fail("credential", "is required by powerbi: the gateway's app registration obtains the Power BI tokens") }
        errors += pb.finish()

        let z = top.section("authorization")
        if let roles = z.stringListMap("roles") { c.permissions.rolePermissions = roles.mapValues(Set.init) }
        if let scopes = z.stringListMap("scopes") { c.permissions.scopePermissions = scopes.mapValues(Set.init) }
        errors += z.finish()

        let (backends, backendErrors) = BackendConfig.parse(top, permissions: c.permissions, credential: c.credential != nil,
                                                                powerBI: c.powerBI != nil)
        c.backends = backends
        errors += backendErrors
        parseTenants(top.section("tenants"), into: &c, errors: &errors)
        parseTrustedProxy(top.section("trusted_proxy"), into: &c.trustedProxy, errors: &errors)

        let a = top.section("auth")
        if !a.isPresent && environment["AZURE_CLIENT_ID"] == nil && environment["TOKEN_AUDIENCE"] == nil {
            top.fail("auth", "is required: authentication cannot be switched off (use \"mode\": \"development\" with dev-token locally)")
        }
        parseAuth(a, into: &c.auth, environment: environment)
        c.auth.providers = parseProviders(a, insecureHTTP: c.auth.allowInsecureHTTPForTesting, errors: &errors)
        // Entra's own settings matter only when Entra vouches for callers.
        if c.auth.trustsEntra && c.auth.audiences.isEmpty {
            a.fail("audiences", "at least one audience is required (client_id, api://… App ID URI, or the public URL)")
        }
        // Every tenant with a record is on the allow-list.
        for id in c.tenants.keys.sorted() where !c.auth.allowedTenants.contains(where: { $0.lowercased() == id }) {
            c.auth.allowedTenants.append(id)
        }
        if c.auth.allowedTenants.isEmpty && !c.auth.acceptAnyTenant {
            a.fail("allowed_tenants", "list the tenant ids allowed to call (or tenant_id / AZURE_TENANT_ID, or tenant records under \"tenants\"); accept_any_tenant is a separate opt-in")
        }
        if c.trustedProxy.enabled, let t = c.trustedProxy.defaultTenant, !c.auth.acceptAnyTenant,
           !c.auth.allowedTenants.contains(where: { $0.lowercased() == t }) {
            errors.append(ConfigError("trusted_proxy.default_tenant", "\(t) is not an allowed tenant"))
        }
        errors += a.finish()
        let oa = top.section("oauth")
        c.oauth = OAuthConfig.parse(oa, instance: c, errors: &errors)
        errors += oa.finish()
        if !c.auth.trustsEntra { errors += c.entraOnlyFeatures() }
        errors = top.finish() + errors
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return c
    }

    private static func parseAuth(_ a: ConfigSection, into auth: inout Auth, environment env: [String: String]) {
        let modeName = a.string("mode", default: "entra")
        if let m = AuthMode(rawValue: modeName) { auth.mode = m } else { a.fail("mode", "must be \"entra\" or \"development\"") }
        auth.authority = a.string("authority", default: auth.authority)
        auth.allowedTenants = a.strings("allowed_tenants") ?? []
        if let t = a.string("tenant_id") { auth.allowedTenants.insert(t, at: 0) }
        auth.acceptAnyTenant = a.bool("accept_any_tenant", default: false)
        auth.audiences = a.strings("audiences") ?? []
        if let id = a.string("client_id") { auth.audiences.insert(id, at: 0) }
        auth.acceptV1Tokens = a.bool("accept_v1_tokens", default: true)
        auth.acceptDelegatedTokens = a.bool("accept_delegated_tokens", default: true)
        auth.acceptAppOnlyTokens = a.bool("accept_app_only_tokens", default: false)
        auth.clockSkewSeconds = a.int("clock_skew_seconds", default: 120, range: 0...300)
        auth.tokenCacheEntries = a.int("token_cache_entries", default: auth.tokenCacheEntries, range: 0...1_000_000)
        auth.jwksURI = a.string("jwks_uri")
        auth.jwksRefreshHours = a.int("jwks_refresh_hours", default: 12, range: 12...24)
        auth.caBundle = a.string("ca_bundle")
        auth.allowInsecureHTTPForTesting = a.bool("allow_insecure_http_for_testing", default: false)
        auth.scopesSupported = a.strings("scopes_supported") ?? []
        auth.requiredScopes = a.strings("required_scopes") ?? []
        auth.resourceName = a.string("resource_name")

        // The names the seed projects used, so their users can move over unchanged.
        if let t = env["AZURE_TENANT_ID"], !t.isEmpty, !auth.allowedTenants.contains(t) { auth.allowedTenants.insert(t, at: 0) }
        if let id = env["AZURE_CLIENT_ID"], !id.isEmpty, !auth.audiences.contains(id) { auth.audiences.append(id) }
        if let aud = env["TOKEN_AUDIENCE"], !aud.isEmpty, !auth.audiences.contains(aud) { auth.audiences.append(aud) }
        if let issuer = env["TOKEN_ISSUER"], !issuer.isEmpty {
            // https://login.microsoftonline.com/{tid}/v2.0 → authority + tenant.
            if let u = URLComponents(string: issuer), let scheme = u.scheme, let host = u.host {
                let parts = u.path.split(separator: "/")
                auth.authority = "\(scheme)://\(host)\(u.port.map { ":\($0)" } ?? "")"
                if let tid = parts.first, !auth.allowedTenants.contains(String(tid)) { auth.allowedTenants.append(String(tid)) }
            } else {
                a.fail("TOKEN_ISSUER", "environment value is not an issuer URL")
            }
        }
        for (i, t) in auth.allowedTenants.enumerated() where !IssuerTenantCheck.isGUID(t) {
            a.fail("allowed_tenants[\(i)]", "\(t) is not a tenant id (a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47)")
        }
        if !auth.authority.hasPrefix("https://") && !(auth.allowInsecureHTTPForTesting && auth.authority.hasPrefix("http://")) {
            a.fail("authority", "must be an https URL (plain http only with allow_insecure_http_for_testing)")
        }
    }
}

public struct ConfigErrors: Error, CustomStringConvertible {
    public let errors: [ConfigError]
    public init(_ errors: [ConfigError]) { self.errors = errors }
    public var description: String { errors.map { "config: \($0)" }.joined(separator: "\n") }
}

extension GatewayConfig {
    /// `tenants: {"<tenant id>": {"name": "Contoso", "rate_limits": {…}, "powerbi": {…}, "backends": {…}}}`.
    static func parseTenants(_ t: ConfigSection, into c: inout GatewayConfig, errors: inout [ConfigError]) {
        for id in t.raw.keys {
            let s = t.section(id)
            guard IssuerTenantCheck.isGUID(id) else {
                t.fail(id, "tenant records are keyed by the Entra tenant id (a GUID)")
                continue
            }
            let key = id.lowercased()
            if c.tenants[key] != nil { t.fail(id, "is listed twice (tenant ids compare case-insensitively)"); continue }
            var record = TenantRecord(id: key, name: s.string("name") ?? "")
            if record.name.isEmpty { s.fail("name", "is required: the organisation's name, shown to its users and in the audit trail") }
            for (i, d) in (s.strings("email_domains") ?? []).enumerated() {
                let domain = d.lowercased()
                if domain.isEmpty || domain.contains("@") || !domain.contains(".") {
                    s.fail("email_domains[\(i)]", "must be a domain such as contoso.com")
                } else if let other = c.tenants.values.first(where: { $0.emailDomains.contains(domain) }) {
                    s.fail("email_domains[\(i)]", "\(domain) already belongs to tenant \(other.id)")
                } else {
                    record.emailDomains.append(domain)
                }
            }
            if s.has("rate_limits") { record.rateLimits = parseRateLimits(s.section("rate_limits"), errors: &errors) }
            if s.has("powerbi") { let p = s.section("powerbi"); record.powerBI = PowerBITenantSettings.parse(p); errors += p.finish() }
            if s.has("backends") {
                let (overrides, problems) = BackendConfig.parseTenantOverrides(.object(s.section("backends").raw), path: "\(s.path).backends",
                                                                               backends: c.backends)
                record.backends = overrides
                errors += problems
            }
            errors += s.finish()
            c.tenants[key] = record
        }
        errors += t.finish()
    }

    static func parseRateLimits(_ r: ConfigSection, errors: inout [ConfigError]) -> RateLimits {
        var limits = RateLimits()
        limits.userPerMinute = r.int("user_per_minute", default: limits.userPerMinute, range: 0...1_000_000)
        limits.userBurst = r.int("user_burst", default: limits.userBurst, range: 1...1_000_000)
        limits.tenantPerMinute = r.int("tenant_per_minute", default: limits.tenantPerMinute, range: 0...10_000_000)
        limits.tenantBurst = r.int("tenant_burst", default: limits.tenantBurst, range: 1...10_000_000)
        errors += r.finish()
        return limits
    }
}
