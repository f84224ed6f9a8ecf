import EntraAuth
import FoundationEssentials
import GatewayCrypto
import GatewayStore
import GatewaySupport
import MCPJSON
import UpstreamHTTP

/// What an opaque-token provider learnt, before it becomes a Principal: kept (as JSON) in the
/// shared introspection cache under the token's digest, never with the token.
struct IntrospectedUser: Equatable {
    var subject: String
    var tenant: String
    var roles: [String]
    var scopes: [String]
    var name: String?
    var email: String?
    var client: String?
    /// When the cached verdict lapses (set when it is saved).
    var expiresAt: Int64?

    var summary: String {
        var o = JSONObject()
        o["sub"] = .string(subject); o["tenant"] = .string(tenant); o["roles"] = JSONValue(roles); o["scopes"] = JSONValue(scopes)
        o["name"] = JSONValue(name); o["email"] = JSONValue(email); o["client"] = JSONValue(client)
        if let expiresAt { o["exp"] = .integer(Int(expiresAt)) }
        return JSONWriter.string(.object(o))
    }

    init(subject: String, tenant: String, roles: [String], scopes: [String], name: String?, email: String?, client: String?) {
        self.subject = subject; self.tenant = tenant; self.roles = roles; self.scopes = scopes
        self.name = name; self.email = email; self.client = client
    }

    init?(summary: String) {
        guard let o = (try? JSONParser.parse(Array(summary.utf8)))?.objectValue,
              let sub = o["sub"]?.stringValue, let tenant = o["tenant"]?.stringValue else { return nil }
        self.init(subject: sub, tenant: tenant, roles: o["roles"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                  scopes: o["scopes"]?.arrayValue?.compactMap(\.stringValue) ?? [], name: o["name"]?.stringValue,
                  email: o["email"]?.stringValue, client: o["client"]?.stringValue)
        expiresAt = o["exp"]?.intValue.map(Int64.init)
    }

    func principal(qualifier: String, issuer: String, expiresAt: Int64) -> Principal {
        Principal(tenantId: tenant, objectId: "\(qualifier):\(subject)", subject: subject, issuer: issuer, clientAppId: client,
                  scopes: scopes, roles: roles, groups: nil, tokenVersion: nil, isAppOnly: false, expiresAt: expiresAt,
                  displayName: name, userPrincipalName: email, provider: qualifier)
    }
}

/// What every opaque-token provider shares: how to ask it, the store's cache and its TTL, the tenant allow-list, the clock.
struct IntrospectionContext: Sendable {
    let http: HTTPClient
    let cache: IntrospectionCache
    let cacheTTLSeconds: Int64
    let allowedTenants: Set<String>
    let acceptAnyTenant: Bool
    let clock: @Sendable () -> Int64
    /// Questions to the provider per minute across the site (burst a fifth of it): a flood of made-up
    /// tokens must not get the gateway's address locked out for failed logins. Cached verdicts still serve.
    let lookups: (limiter: RateLimiter, perMinute: Int)?

    init(http: HTTPClient, cache: IntrospectionCache, cacheTTLSeconds: Int, allowedTenants: [String], acceptAnyTenant: Bool,
         lookups: (limiter: RateLimiter, perMinute: Int)? = nil, clock: @escaping @Sendable () -> Int64 = systemClockSeconds) {
        self.http = http
        self.lookups = lookups
        self.cache = cache
        self.cacheTTLSeconds = Int64(cacheTTLSeconds)
        self.allowedTenants = Set(allowedTenants.map { $0.lowercased() })
        self.acceptAnyTenant = acceptAnyTenant
        self.clock = clock
    }
}

/// A provider asked over HTTPS about each new token (`introspect`); its answer is shared through
/// the store for at most the token's remaining life and the configured TTL. Down → 503, never 401.
protocol IntrospectingProvider: OpaqueTokenProvider {
    var qualifier: String { get }
    var issuer: String { get }
    var context: IntrospectionContext { get }
    /// The user, and how many more seconds the provider says the token lives (nil: it does not say).
    func introspect(_ token: String) -> Result<(IntrospectedUser, Int64?), TokenVerificationError>
}

extension IntrospectingProvider {
    func check(_ token: String, cacheHit: inout Bool) -> Result<Principal, TokenVerificationError> {
        let cache = context.cache, cacheTTLSeconds = context.cacheTTLSeconds
        let now = context.clock()
        let digest = SHA256Digest(Array(token.utf8)).hex
        if let summary = try? cache.introspection(provider: qualifier, tokenDigest: digest, now: now),
           let user = IntrospectedUser(summary: summary) {
            cacheHit = true
            return admit(user, expiresAt: user.expiresAt ?? now + cacheTTLSeconds)
        }
        cacheHit = false
        if let (limiter, perMinute) = context.lookups {
            let bucket = RateBucket(key: "introspect:\(qualifier)", perMinute: Double(perMinute), burst: Double(max(1, perMinute / 5)))
            guard (try? limiter.take([bucket], now: Double(now))) == .some(nil) else { return .failure(.providerUnavailable) }
        }
        switch introspect(token) {
        case .failure(let e): return .failure(e)
        case .success(let (found, remaining)):
            var user = found
            let lifetime = min(cacheTTLSeconds, remaining ?? cacheTTLSeconds)
            guard lifetime > 0 else { return .failure(.expired) }
            user.expiresAt = now + lifetime
            // The tenant is checked after the cache too, so a tenant taken off the list loses access at once.
            let admitted = admit(user, expiresAt: now + lifetime)
            if case .success = admitted {
                try? cache.saveIntrospection(provider: qualifier, tokenDigest: digest, summary: user.summary, expires: now + lifetime, now: now)
            }
            return admitted
        }
    }

    func admit(_ user: IntrospectedUser, expiresAt: Int64) -> Result<Principal, TokenVerificationError> {
        guard context.acceptAnyTenant || context.allowedTenants.contains(user.tenant) else { return .failure(.tenantNotAllowed) }
        return .success(user.principal(qualifier: qualifier, issuer: issuer, expiresAt: expiresAt))
    }

    /// The provider's answer, or why there is none: a transport failure is the provider's, not the caller's.
    func send(_ request: UpstreamRequest) -> Result<UpstreamResponse, TokenVerificationError> {
        do { return .success(try context.http.send(request)) } catch { return .failure(.providerUnavailable) }
    }

    static func parseObject(_ body: [UInt8]) -> JSONObject? {
        (try? JSONParser.parse(body, limits: JSONLimits(maxDepth: 8, maxBytes: 1 << 20, maxStringBytes: 64 << 10)))?.objectValue
    }
}

/// `google_access_token`: Google's opaque access tokens (`ya29.…`), checked with the tokeninfo
/// endpoint as google-auth-library does (POST, the token as a Bearer credential): the token's
/// `aud` and `azp` must be our OAuth client, `expires_in` bounds the cache, the user is
/// `google:<sub>`, the tenant comes from a verified email's domain or the configured tenant.
final class GoogleAccessTokenProvider: IntrospectingProvider, @unchecked Sendable {
    var qualifier: String { "google" }
    var issuer: String { "https://accounts.google.com" }
    let settings: GoogleAccessTokenSettings
    let context: IntrospectionContext
    /// Email domains and fixed tenant or roles, as the oidc providers use them.
    let mapping: OIDCClaimsMapping

    init(settings: GoogleAccessTokenSettings, context: IntrospectionContext, emailDomains: [String: String]) {
        var m = OIDCClaimsMapping()
        (m.emailDomains, m.fixedTenant, m.roles) = (emailDomains, settings.tenant, settings.roles)
        (m.allowedTenants, m.acceptAnyTenant) = (context.allowedTenants, context.acceptAnyTenant)
        (self.settings, self.context, self.mapping) = (settings, context, m)
    }

    func recognises(_ token: String) -> Bool { token.hasPrefix("ya29.") }

    func introspect(_ token: String) -> Result<(IntrospectedUser, Int64?), TokenVerificationError> {
        let clientID = settings.clientID
        let request = UpstreamRequest(method: "POST", url: settings.tokenInfoURL,
                                      headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/x-www-form-urlencoded")],
                                      idempotent: true)
        let response: UpstreamResponse
        switch send(request) { case .success(let r): response = r; case .failure(let e): return .failure(e) }
        // 400 invalid_token (unknown or expired) is the documented refusal; 5xx and 429 are the provider's trouble.
        guard response.status == 200 else {
            return .failure(response.status >= 500 || response.status == 429 ? .providerUnavailable : .rejectedByProvider)
        }
        guard let info = Self.parseObject(response.body), let aud = Self.text(info["aud"]), let expiresIn = Self.number(info["expires_in"]) else {
            return .failure(.providerUnavailable)  // a 200 that is not the documented answer
        }
        guard aud == clientID else { return .failure(.invalidAudience) }
        if let azp = Self.text(info["azp"]), azp != clientID { return .failure(.invalidAuthorizedParty) }
        guard expiresIn > 0 else { return .failure(.expired) }
        // tokeninfo names the user only for tokens granted openid, email or profile: a documented
        // answer, the caller's token at fault (401), not Google's trouble.
        guard let sub = Self.text(info["sub"]), !sub.isEmpty else { return .failure(.missingClaim(.sub)) }
        // tokeninfo writes booleans and numbers as strings; the mapping wants the JSON forms.
        var claims = JSONObject()
        if let email = Self.text(info["email"]) { claims["email"] = .string(email) }
        claims["email_verified"] = .bool(Self.text(info["email_verified"]) == "true" || info["email_verified"]?.boolValue == true)
        let tenant: String
        do { tenant = try mapping.tenant(claims) } catch { return .failure(error) }
        let email = claims["email_verified"]?.boolValue == true ? Self.text(info["email"]) : nil
        let scopes = Self.text(info["scope"]).map { $0.split(separator: " ").map(String.init) } ?? []
        return .success((IntrospectedUser(subject: sub, tenant: tenant, roles: mapping.roles, scopes: scopes, name: nil, email: email, client: aud), expiresIn))
    }

    static func text(_ v: JSONValue?) -> String? { v?.stringValue }
    static func number(_ v: JSONValue?) -> Int64? {
        if let i = v?.intValue { return Int64(i) }
        return v?.stringValue.flatMap { Int64($0) }
    }
}

/// `github`: GitHub user tokens (`gho_`, `ghp_`, `ghu_`, `github_pat_`), checked with `GET /user`
/// and, when organisations are configured, `GET /user/orgs` (and `GET /user/teams` when an
/// organisation names teams): the user must belong to one of them, which gives the tenant and roles. GitHub tokens carry no lifetime: the cache TTL alone bounds it.
final class GitHubProvider: IntrospectingProvider, @unchecked Sendable {
    static let tokenPrefixes = ["gho_", "ghp_", "ghu_", "github_pat_"]
    var qualifier: String { "github" }
    var issuer: String { "https://github.com" }
    let settings: GitHubProviderSettings
    let context: IntrospectionContext
    /// `api_url` without trailing slashes.
    let apiURL: String

    init(settings: GitHubProviderSettings, context: IntrospectionContext) {
        var api = Substring(settings.apiURL)
        while api.hasSuffix("/") { api = api.dropLast() }
        self.apiURL = String(api)
        self.settings = settings
        self.context = context
    }

    func recognises(_ token: String) -> Bool { Self.tokenPrefixes.contains { token.hasPrefix($0) } }

    private func get(_ path: String, _ token: String) -> Result<UpstreamResponse, TokenVerificationError> {
        send(UpstreamRequest(url: apiURL + path, headers: [("Authorization", "Bearer \(token)"),
                                                                  ("Accept", "application/vnd.github+json"),
                                                                  ("X-GitHub-Api-Version", "2022-11-28")]))
    }

    /// A refusal that is GitHub's trouble (5xx, or its rate limit) rather than the token's.
    private static func providerTrouble(_ r: UpstreamResponse) -> Bool {
        r.status >= 500 || r.status == 429 || (r.status == 403 && r.header("x-ratelimit-remaining") == "0")
    }

    /// A list GitHub answers (`/user/orgs`, `/user/teams`): 403 means the token may not read it (`read:org`).
    private func list(_ path: String, _ token: String) -> Result<[JSONValue], TokenVerificationError> {
        let response: UpstreamResponse
        switch get(path, token) { case .success(let r): response = r; case .failure(let e): return .failure(e) }
        guard response.status == 200 else {
            if Self.providerTrouble(response) { return .failure(.providerUnavailable) }
            return .failure(response.status == 403 ? .providerScopeMissing : .rejectedByProvider)
        }
        guard let items = (try? JSONParser.parse(response.body, limits: JSONLimits(maxDepth: 8, maxBytes: 4 << 20)))?.arrayValue else {
            return .failure(.providerUnavailable)
        }
        return .success(items)
    }

    func introspect(_ token: String) -> Result<(IntrospectedUser, Int64?), TokenVerificationError> {
        let userResponse: UpstreamResponse
        switch get("/user", token) { case .success(let r): userResponse = r; case .failure(let e): return .failure(e) }
        guard userResponse.status == 200 else {
            return .failure(Self.providerTrouble(userResponse) ? .providerUnavailable : .rejectedByProvider)
        }
        guard let user = Self.parseObject(userResponse.body), let id = user["id"]?.intValue, let login = user["login"]?.stringValue else {
            return .failure(.providerUnavailable)
        }
        let scopes = userResponse.header("x-oauth-scopes").map { $0.split(separator: ",").map { $0.trimmingASCIISpaces() } } ?? []
        var tenant = settings.tenant
        var roles = settings.roles
        if !settings.organizations.isEmpty {
            let orgs: [JSONValue]
            switch list("/user/orgs?per_page=100", token) { case .success(let l): orgs = l; case .failure(let e): return .failure(e) }
            let member = Set(orgs.compactMap { $0["login"]?.stringValue?.lowercased() })
            var candidates = settings.organizations.filter { member.contains($0.login) }
            // Team requirements: one more call, only when a candidate organization has them.
            if candidates.contains(where: { !$0.teams.isEmpty }) {
                let teams: [JSONValue]
                switch list("/user/teams?per_page=100", token) { case .success(let l): teams = l; case .failure(let e): return .failure(e) }
                let memberships = Set(teams.compactMap { team -> String? in
                    guard let slug = team["slug"]?.stringValue, let org = team["organization"]?["login"]?.stringValue else { return nil }
                    return org.lowercased() + "/" + slug.lowercased()
                })
                candidates = candidates.filter { org in org.teams.isEmpty || org.teams.contains { memberships.contains(org.login + "/" + $0) } }
            }
            guard let org = candidates.first else { return .failure(.organizationNotAllowed) }
            tenant = org.tenant ?? tenant
            roles = org.roles
        }
        guard let tenant else { return .failure(.noTenantForUser) }
        return .success((IntrospectedUser(subject: String(id), tenant: tenant, roles: roles, scopes: scopes,
                                          name: user["name"]?.stringValue ?? login, email: nil, client: nil), nil))
    }
}
