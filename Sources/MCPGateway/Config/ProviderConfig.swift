import EntraAuth
import MCPJSON

/// One entry of `auth.providers`: who may vouch for callers of this instance. Without the key
/// the instance trusts Entra alone, exactly as before.
public enum IdentityProviderSettings: Sendable {
    /// The `auth` section's own Entra settings.
    case entra
    case oidc(OIDCProviderSettings)
    case apiKey(APIKeyProviderSettings)
    case googleAccessToken(GoogleAccessTokenSettings)
    case github(GitHubProviderSettings)

    public var type: String {
        switch self {
        case .entra: return "entra"
        case .oidc: return "oidc"
        case .apiKey: return "api_key"
        case .googleAccessToken: return "google_access_token"
        case .github: return "github"
        }
    }
}

/// `{"type": "oidc", "name": "auth0", "issuer": "https://tenant.eu.auth0.com/", "audiences": [...], ...}`.
public struct OIDCProviderSettings: Sendable {
    public var name: String
    public var issuer: String
    public var audiences: [String]
    public var authorizedParty: String?
    public var algorithms: Set<JWSAlgorithm> = [.rs256]
    public var jwksURI: String?
    public var claims = OIDCClaimsMapping()
}

/// `{"type": "api_key"}`: keys made with `mcp-fcgi apikey create`, held in the store.
public struct APIKeyProviderSettings: Sendable {
    public init() {}
}

/// `{"type": "google_access_token", "client_id": "….apps.googleusercontent.com"}`: Google's opaque
/// access tokens, asked of tokeninfo; tenant from a verified email's domain or `tenant`.
public struct GoogleAccessTokenSettings: Sendable {
    public var clientID: String
    public var tokenInfoURL = "https://oauth2.googleapis.com/tokeninfo"
    public var tenant: String?
    /// Roles every user of this provider has.
    public var roles: [String] = []
    public var cacheTTLSeconds = 300
    public var lookupsPerMinute = 300
}

/// `{"type": "github", "organizations": {"acme": {"tenant": "<guid>", "roles": ["MCP.User"]}}}`, or a
/// fixed `tenant` and `roles` for every GitHub user. The org login is compared case-insensitively.
public struct GitHubProviderSettings: Sendable {
    public struct Organization: Sendable {
        public var login: String
        public var tenant: String?
        public var roles: [String]
        /// Team slugs (lower-cased); when set, the user must be in one of them, not just in the organization.
        public var teams: [String] = []
    }
    public var apiURL = "https://api.github.com"
    public var tenant: String?
    public var roles: [String] = []
    /// In the order the config lists them (by login): the first the user belongs to decides.
    public var organizations: [Organization] = []
    public var cacheTTLSeconds = 300
    /// Questions to GitHub per minute across the site; past it, new tokens get 503 until the bucket refills.
    public var lookupsPerMinute = 300
}

extension GatewayConfig {
    /// `auth.providers`: a list of provider objects, each named by `type`; nil when absent.
    static func parseProviders(_ a: ConfigSection, insecureHTTP: Bool, errors: inout [ConfigError]) -> [IdentityProviderSettings]? {
        guard let value = a.json("providers") else { return nil }
        guard let list = value.arrayValue, !list.isEmpty else {
            a.fail("providers", "must be a non-empty list of provider objects, e.g. [{\"type\": \"entra\"}]"); return nil
        }
        var providers: [IdentityProviderSettings] = []
        var names: Set<String> = []
        for (i, item) in list.enumerated() {
            let path = "\(a.path).providers[\(i)]"
            guard let object = item.objectValue else { errors.append(ConfigError(path, "must be an object with a type")); continue }
            let s = ConfigSection(object, path: path)
            let type = s.string("type") ?? ""
            let provider: IdentityProviderSettings?
            switch type {
            case "entra": provider = .entra
            case "api_key": provider = .apiKey(APIKeyProviderSettings())
            case "oidc": provider = parseOIDC(s, insecureHTTP: insecureHTTP).map { .oidc($0) }
            case "google_access_token": provider = .googleAccessToken(parseGoogleAccessToken(s, insecureHTTP: insecureHTTP))
            case "github": provider = .github(parseGitHub(s, insecureHTTP: insecureHTTP, errors: &errors))
            default:
                s.fail("type", "must be entra, oidc, google_access_token, github or api_key"); provider = nil
            }
            errors += s.finish()
            guard let provider else { continue }
            // One of each kind, one oidc per name: two of a kind would make the routing ambiguous.
            let identity: String
            if case .oidc(let o) = provider { identity = "oidc:\(o.name)" } else { identity = provider.type }
            if !names.insert(identity).inserted { errors.append(ConfigError(path, "\(identity) is listed twice")); continue }
            providers.append(provider)
        }
        let issuers = providers.compactMap { if case .oidc(let o) = $0 { return o.issuer } else { return nil } }
        if Set(issuers).count < issuers.count { a.fail("providers", "two oidc providers have the same issuer") }
        return providers
    }

    private static func parseOIDC(_ s: ConfigSection, insecureHTTP: Bool) -> OIDCProviderSettings? {
        let name = s.string("name") ?? ""
        if name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            s.fail("name", "is required: a short name of letters, digits, '-' or '_' (part of every user id: oidc:<name>:<sub>)")
        }
        let issuer = s.string("issuer") ?? ""
        if issuer.isEmpty {
            s.fail("issuer", "is required: the issuer URL exactly as tokens carry it in iss (Auth0's ends with \"/\")")
        } else {
            requireHTTPS(s, "issuer", issuer, insecureHTTP: insecureHTTP)
        }
        let audiences = s.strings("audiences") ?? []
        if audiences.isEmpty { s.fail("audiences", "list the audiences (aud) this API accepts from the provider, e.g. its client id") }
        var settings = OIDCProviderSettings(name: name, issuer: issuer, audiences: audiences)
        settings.authorizedParty = s.string("authorized_party")
        if let names = s.strings("algorithms") {
            var algorithms: Set<JWSAlgorithm> = []
            for n in names {
                if let alg = JWSAlgorithm(rawValue: n) { algorithms.insert(alg) } else { s.fail("algorithms", "\(n) is not one of RS256, PS256, ES256") }
            }
            if algorithms.isEmpty { s.fail("algorithms", "must list at least one of RS256, PS256, ES256") }
            settings.algorithms = algorithms
        }
        settings.jwksURI = s.string("jwks_uri")
        if let uri = settings.jwksURI { requireHTTPS(s, "jwks_uri", uri, insecureHTTP: insecureHTTP) }
        settings.claims.subjectClaim = s.string("subject_claim", default: "sub")
        settings.claims.rolesClaim = s.string("roles_claim")
        settings.claims.roles = s.strings("roles") ?? []
        settings.claims.tenantClaim = s.string("tenant_claim")
        settings.claims.fixedTenant = s.string("tenant")?.lowercased()
        if let t = settings.claims.fixedTenant, !IssuerTenantCheck.isGUID(t) { s.fail("tenant", "must be a tenant id (GUID)") }
        if settings.claims.fixedTenant != nil && settings.claims.tenantClaim != nil {
            s.fail("tenant_claim", "cannot be combined with tenant: the tenant comes from one place")
        }
        return settings
    }

    private static func tenantOption(_ s: ConfigSection, _ key: String = "tenant") -> String? {
        guard let t = s.string(key)?.lowercased() else { return nil }
        if !IssuerTenantCheck.isGUID(t) { s.fail(key, "must be a tenant id (GUID)") }
        return t
    }

    private static func upstreamURL(_ s: ConfigSection, _ key: String, default d: String, insecureHTTP: Bool) -> String {
        let url = s.string(key, default: d)
        requireHTTPS(s, key, url, insecureHTTP: insecureHTTP)
        return url
    }

    /// A provider is asked over TLS: plain http would hand tokens to anyone on the path, and
    /// the HTTP client would refuse it on every request (a 503 for a configuration mistake).
    private static func requireHTTPS(_ s: ConfigSection, _ key: String, _ url: String, insecureHTTP: Bool) {
        let lower = url.lowercased()
        if !lower.hasPrefix("https://") && !(insecureHTTP && lower.hasPrefix("http://")) {
            s.fail(key, "must be an https URL (plain http only with allow_insecure_http_for_testing)")
        }
    }

    private static func parseGoogleAccessToken(_ s: ConfigSection, insecureHTTP: Bool) -> GoogleAccessTokenSettings {
        var g = GoogleAccessTokenSettings(clientID: s.string("client_id") ?? "")
        if g.clientID.isEmpty { s.fail("client_id", "is required: our OAuth client id, which the tokens' aud and azp must name") }
        g.tokenInfoURL = upstreamURL(s, "tokeninfo_url", default: g.tokenInfoURL, insecureHTTP: insecureHTTP)
        g.tenant = tenantOption(s)
        g.roles = s.strings("roles") ?? []
        g.cacheTTLSeconds = s.int("cache_ttl_seconds", default: g.cacheTTLSeconds, range: 1...3600)
        g.lookupsPerMinute = s.int("lookups_per_minute", default: g.lookupsPerMinute, range: 1...100_000)
        return g
    }

    private static func parseGitHub(_ s: ConfigSection, insecureHTTP: Bool, errors: inout [ConfigError]) -> GitHubProviderSettings {
        var g = GitHubProviderSettings()
        g.apiURL = upstreamURL(s, "api_url", default: g.apiURL, insecureHTTP: insecureHTTP)
        g.tenant = tenantOption(s)
        g.roles = s.strings("roles") ?? []
        g.cacheTTLSeconds = s.int("cache_ttl_seconds", default: g.cacheTTLSeconds, range: 1...3600)
        g.lookupsPerMinute = s.int("lookups_per_minute", default: g.lookupsPerMinute, range: 1...100_000)
        let orgs = s.section("organizations")
        for login in orgs.raw.keys.sorted() {
            let o = orgs.section(login)
            g.organizations.append(.init(login: login.lowercased(), tenant: tenantOption(o), roles: o.strings("roles") ?? [],
                                         teams: (o.strings("teams") ?? []).map { $0.lowercased() }))
            errors += o.finish()
        }
        errors += orgs.finish()
        if g.tenant == nil && g.organizations.contains(where: { $0.tenant == nil }) {
            s.fail("tenant", "name the tenant of GitHub users (here or per organization): there is no other way to place them")
        }
        return g
    }

    /// A provider's claims mapping with the instance's email domains and tenant allow-list.
    func tenantMapping(_ base: OIDCClaimsMapping = OIDCClaimsMapping(), emailDomains: [String: String]? = nil) -> OIDCClaimsMapping {
        var m = base
        m.emailDomains = emailDomains ?? tenants.values.reduce(into: [String: String]()) { map, record in
            for d in record.emailDomains { map[d] = record.id }
        }
        m.allowedTenants = Set(auth.allowedTenants.map { $0.lowercased() })
        m.acceptAnyTenant = auth.acceptAnyTenant
        return m
    }

    /// The oidc providers' mappings learn the tenants' email domains and the allow-list.
    func resolvedProviders() -> [IdentityProviderSettings] {
        let domains = tenants.values.reduce(into: [String: String]()) { map, record in
            for d in record.emailDomains { map[d] = record.id }
        }
        return (auth.providers ?? [.entra]).map { provider in
            guard case .oidc(var o) = provider else { return provider }
            o.claims = tenantMapping(o.claims, emailDomains: domains)
            return .oidc(o)
        }
    }
}

extension GatewayConfig {
    /// Without Entra among the providers, what only an Entra user can use is a configuration
    /// error rather than a refusal at every call: the OAuth front signs users in with Entra, and
    /// Power BI's delegated mode and token-using backends act On-Behalf-Of an Entra user.
    func entraOnlyFeatures() -> [ConfigError] {
        let why = "needs Entra users (On-Behalf-Of), and auth.providers does not list {\"type\": \"entra\"}"
        var errors: [ConfigError] = []
        if oauth != nil {
            errors.append(ConfigError("oauth", "signs users in with Entra, and auth.providers does not list {\"type\": \"entra\"}"))
        }
        if let powerBI {
            if powerBI.accessMode == .delegated { errors.append(ConfigError("powerbi.access_mode", "delegated \(why); use service_principal")) }
            for id in tenants.keys.sorted() where tenants[id]?.powerBI?.accessMode == .delegated {
                errors.append(ConfigError("tenants.\(id).powerbi.access_mode", "delegated \(why); use service_principal"))
            }
        }
        for name in backends.keys.sorted() where backends[name]?.usesTokens == true {
            errors.append(ConfigError("backends.\(name).auth_mode", "\(backends[name]!.authMode.rawValue) \(why)"))
        }
        return errors
    }
}
