import Foundation
import MCPJSON

/// Everything the gateway reads from its config file and environment.
public struct GatewayConfig: Sendable {
    public struct Server: Sendable {
        public var name = "mcp-fcgi"
        public var mcpPath = "/mcp"
        /// The canonical URL clients use for the MCP endpoint; it is the OAuth resource identifier.
        public var publicURL = ""
        public var instructions: String?
        public var workers = max(4, 2 * ProcessInfo.processInfo.activeProcessorCount)
        public var shutdownGraceSeconds = 10.0
    }

    public struct Limits: Sendable {
        public var maxBodyBytes = 1 << 20
        public var maxJSONDepth = 64
        public var toolsPageSize = 50
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
        public var jwksURI: String?
        public var jwksRefreshHours = 12
        public var caBundle: String?
        public var allowInsecureHTTPForTesting = false
        /// Scopes advertised in the metadata and challenges (e.g. "https://host/mcp/mcp.tools").
        public var scopesSupported: [String] = []
        /// Delegated tokens must carry every one of these `scp` values.
        public var requiredScopes: [String] = []
        public var resourceName: String?
    }

    public var server = Server()
    public var limits = Limits()
    public var allowedOrigins: [String] = []
    public var stateDirectory = "/var/lib/mcp-fcgi"
    public var logLevel: Log.Level = .info
    public var auth = Auth()
    public var permissions = PermissionPolicy.standard
    /// The shared SQLite file; default `<state_dir>/mcp-fcgi.db`.
    public var storePath: String?
    public var rateLimits = RateLimits()
    public var audit = Audit()
    public var sessions = Sessions()
    /// Customer web backends and their declared tools (`BackendConfig`).
    public var backends: [String: BackendSettings] = [:]

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
    }

    public struct RateLimits: Sendable {
        /// Requests per minute and burst, per user and per tenant; 0 turns that limit off.
        public var userPerMinute = 120
        public var userBurst = 30
        public var tenantPerMinute = 1200
        public var tenantBurst = 200
    }

    public var resolvedStorePath: String { storePath ?? stateDirectory + "/mcp-fcgi.db" }

    public init() {}

    /// Loads a config file, then applies environment overrides. All problems are reported together.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigErrors([ConfigError("", "cannot read the config file \(path)")])
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(Array(data), limits: JSONLimits(maxDepth: 16, maxBytes: 1 << 20))
        } catch {
            throw ConfigErrors([ConfigError("", "\(path) is not valid JSON: \(error)")])
        }
        guard let object = value.objectValue else { throw ConfigErrors([ConfigError("", "\(path) must hold a JSON object")]) }
        return try parse(object, environment: environment)
    }

    public static func parse(_ root: JSONObject, environment: [String: String] = [:]) throws -> GatewayConfig {
        var c = GatewayConfig()
        let top = ConfigSection(root, path: "")
        var errors: [ConfigError] = []

        let s = top.section("server")
        c.server.name = s.string("name", default: c.server.name)
        c.server.mcpPath = s.string("mcp_path", default: c.server.mcpPath)
        c.server.publicURL = s.string("public_url", default: "")
        c.server.instructions = s.string("instructions")
        c.server.workers = s.int("workers", default: c.server.workers, range: 1...256)
        c.server.shutdownGraceSeconds = Double(s.int("shutdown_grace_seconds", default: 10, range: 0...600))
        if !c.server.mcpPath.hasPrefix("/") || c.server.mcpPath.count < 2 || c.server.mcpPath.hasSuffix("/") {
            s.fail("mcp_path", "must be an absolute path such as /mcp, without a trailing slash")
        }
        if c.server.publicURL.isEmpty {
            s.fail("public_url", "is required: the URL clients use for the MCP endpoint, e.g. https://mcp.example.com/mcp")
        } else if let u = URLComponents(string: c.server.publicURL), let scheme = u.scheme, u.host != nil,
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
        errors += l.finish()

        let o = top.section("origins")
        c.allowedOrigins = o.strings("allowed") ?? []
        errors += o.finish()

        c.stateDirectory = top.string("state_dir", default: c.stateDirectory)
        if !c.stateDirectory.hasPrefix("/") { top.fail("state_dir", "must be an absolute path") }

        let g = top.section("logging")
        let levelName = g.string("level", default: "info")
        if let level = Log.Level(name: levelName) { c.logLevel = level } else { g.fail("level", "must be debug, info, warning or error") }
        errors += g.finish()

        let st = top.section("store")
        c.storePath = st.string("path")
        if let p = c.storePath, !p.hasPrefix("/") { st.fail("path", "must be an absolute path") }
        errors += st.finish()

        let r = top.section("rate_limits")
        c.rateLimits.userPerMinute = r.int("user_per_minute", default: 120, range: 0...1_000_000)
        c.rateLimits.userBurst = r.int("user_burst", default: 30, range: 1...1_000_000)
        c.rateLimits.tenantPerMinute = r.int("tenant_per_minute", default: 1200, range: 0...10_000_000)
        c.rateLimits.tenantBurst = r.int("tenant_burst", default: 200, range: 1...10_000_000)
        errors += r.finish()

        let au = top.section("audit")
        c.audit.includeArguments = au.bool("include_arguments", default: false)
        c.audit.retentionDays = au.int("retention_days", default: 90, range: 1...3650)
        errors += au.finish()

        let se = top.section("sessions")
        c.sessions.enabled = se.bool("enabled", default: false)
        c.sessions.idleMinutes = se.int("idle_minutes", default: 30, range: 1...1440)
        errors += se.finish()

        let z = top.section("authorization")
        if let roles = z.stringListMap("roles") { c.permissions.rolePermissions = roles.mapValues(Set.init) }
        if let scopes = z.stringListMap("scopes") { c.permissions.scopePermissions = scopes.mapValues(Set.init) }
        errors += z.finish()

        let (backends, backendErrors) = BackendConfig.parse(top, permissions: c.permissions)
        c.backends = backends
        errors += backendErrors

        let a = top.section("auth")
        if !a.isPresent && environment["AZURE_CLIENT_ID"] == nil && environment["TOKEN_AUDIENCE"] == nil {
            top.fail("auth", "is required: authentication cannot be switched off (use \"mode\": \"development\" with dev-token locally)")
        }
        parseAuth(a, into: &c.auth, environment: environment)
        errors += a.finish()
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
        if auth.audiences.isEmpty { a.fail("audiences", "at least one audience is required (client_id, api://… App ID URI, or the public URL)") }
        if auth.allowedTenants.isEmpty && !auth.acceptAnyTenant {
            a.fail("allowed_tenants", "list the tenant ids allowed to call (or tenant_id / AZURE_TENANT_ID); accept_any_tenant is a separate opt-in")
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
