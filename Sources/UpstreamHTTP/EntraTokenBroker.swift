import EntraAuth
import FoundationEssentials
import GatewayCrypto
import MCPJSON
import GatewaySupport

/// `TokenBroker` against the Entra ID v2 token endpoint, as the gateway's confidential
/// client: On-Behalf-Of for users, client credentials for the gateway itself, always in
/// the caller's tenant. Tokens are cached per process (every worker thread shares them)
/// until shortly before they expire.
///
/// One broker serves an instance: its own `authority`, and others through `atAuthority`
/// (Power BI asks its national cloud's login host), with one credential and one cache.
public final class EntraTokenBroker: TokenBroker, @unchecked Sendable {
    public let clientId: String
    /// The token endpoint's host when none other is asked for, e.g. https://login.microsoftonline.com (no trailing slash).
    public let authority: String
    let credential: ClientCredential
    let http: HTTPClient
    /// Tokens are treated as expired this long before Entra says they are.
    let expiryMarginSeconds: Double
    let clock: @Sendable () -> Double
    private let lock = Lock()
    private var cache: [String: BrokeredToken] = [:]
    private let maxCacheEntries = 10_000

    public init(clientId: String, authority: String, credential: ClientCredential, http: HTTPClient,
                expiryMarginSeconds: Double = 300, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.clientId = clientId
        self.authority = Self.trimmed(authority)
        self.credential = credential
        self.http = http
        self.expiryMarginSeconds = expiryMarginSeconds
        self.clock = clock
    }

    public func token(_ request: TokenRequest) throws -> BrokeredToken {
        try token(request, authority: authority, http: http)
    }

    /// This broker, with its credential and its token cache, asking `authority`'s token
    /// endpoint through `http`. Tokens are cached per authority.
    public func atAuthority(_ authority: String, http: HTTPClient) -> TokenBroker {
        AuthorityBoundBroker(broker: self, authority: Self.trimmed(authority), http: http)
    }

    func token(_ request: TokenRequest, authority: String, http: HTTPClient) throws -> BrokeredToken {
        // The tenant goes into the URL: only a GUID may.
        guard IssuerTenantCheck.isGUID(request.tenantId) else {
            throw TokenBrokerError.rejected(code: "invalid_request", detail: "the tenant id is not a GUID")
        }
        let key = cacheKey(request, authority: authority)
        let now = clock()
        lock.lock()
        let cached = cache[key]
        lock.unlock()
        if let cached, cached.expiresAt - expiryMarginSeconds > now { return cached }

        let endpoint = "\(authority)/\(request.tenantId.lowercased())/oauth2/v2.0/token"
        var form: [(String, String)] = [("client_id", clientId), ("scope", request.scopes.joined(separator: " "))]
        switch request.grant {
        case .onBehalfOf(let assertion, _):
            form += [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion),
                     ("requested_token_use", "on_behalf_of")]
        case .clientCredentials:
            form.append(("grant_type", "client_credentials"))
        }
        form += try credential.tokenRequestFields(clientId: clientId, endpoint: endpoint, now: Int(now))
        let body = Array(URLEncoding.form(form).utf8)
        let response: UpstreamResponse
        do {
            // A token request is safe to repeat: nothing changes at Entra until a token is used.
            response = try http.send(UpstreamRequest(method: "POST", url: endpoint,
                                                     headers: [("Content-Type", "application/x-www-form-urlencoded"),
                                                               ("Accept", "application/json")],
                                                     body: body, idempotent: true))
        } catch let e as UpstreamError {
            throw TokenBrokerError.unavailable(e.description)
        }
        let json = try? JSONParser.parse(response.body, limits: JSONLimits(maxDepth: 8, maxBytes: 256 << 10))
        guard response.status == 200 else {
            throw Self.mapError(status: response.status, body: json?.objectValue, scopes: request.scopes)
        }
        guard let o = json?.objectValue, let access = o["access_token"]?.stringValue, !access.isEmpty else {
            throw TokenBrokerError.unavailable("the token endpoint answered 200 without an access_token")
        }
        // expires_in is a number, or a numeric string in some older answers.
        let lifetime = o["expires_in"]?.numberValue ?? o["expires_in"]?.stringValue.flatMap(Double.init) ?? 3600
        let token = BrokeredToken(accessToken: access, expiresAt: now + lifetime)
        lock.lock()
        if cache.count >= maxCacheEntries { cache = cache.filter { $0.value.expiresAt - expiryMarginSeconds > now } }
        if cache.count < maxCacheEntries { cache[key] = token }
        lock.unlock()
        return token
    }

    /// (authority, tenant, user, scopes, SHA-256 of the incoming token) for OBO; (authority, tenant, scopes) for the app itself.
    func cacheKey(_ r: TokenRequest, authority: String) -> String {
        let scopes = r.scopes.sorted().joined(separator: " ")
        switch r.grant {
        case .onBehalfOf(let assertion, let userKey):
            return "obo|\(authority)|\(r.tenantId.lowercased())|\(userKey)|\(scopes)|\(SHA256Digest(Array(assertion.utf8)).hex)"
        case .clientCredentials:
            return "app|\(authority)|\(r.tenantId.lowercased())|\(scopes)"
        }
    }

    static func trimmed(_ authority: String) -> String {
        authority.hasSuffix("/") ? String(authority.dropLast()) : authority
    }

    /// Entra's error JSON (`error`, `error_description`, `error_codes`, `suberror`, `claims`) as a `TokenBrokerError`.
    static func mapError(status: Int, body: JSONObject?, scopes: [String]) -> TokenBrokerError {
        guard let body, let code = body["error"]?.stringValue else {
            return status >= 500 || status == 429 ? .unavailable("the token endpoint answered HTTP \(status)")
                : .rejected(code: "http_\(status)", detail: "the token endpoint answered HTTP \(status) without an OAuth error")
        }
        let codes = Set(body["error_codes"]?.arrayValue?.compactMap(\.intValue) ?? [])
        let detail = summary(body["error_description"]?.stringValue ?? code)
        if codes.contains(65001) || body["suberror"]?.stringValue == "consent_required" || detail.hasPrefix("AADSTS65001") {
            return .consentRequired(scopes: scopes, detail: detail)
        }
        if code == "interaction_required" || codes.contains(50079) || codes.contains(50076) {
            return .interactionRequired(claims: body["claims"]?.stringValue, detail: detail)
        }
        if codes.contains(7000114) { return .delegatedAccessNeedsUser }
        if code == "invalid_client" {
            return .rejected(code: code, detail: detail + "; check the server's client id, secret or certificate")
        }
        if code == "temporarily_unavailable" || status >= 500 { return .unavailable(detail) }
        return .rejected(code: code, detail: detail)
    }

    /// The first line of Entra's description, without trace and correlation ids, bounded.
    static func summary(_ description: String) -> String {
        var s = description.split(whereSeparator: \.isNewline).first.map(String.init) ?? description
        for marker in [" Trace ID:", " Correlation ID:", " Timestamp:"] {
            if let r = s.firstRange(of: marker) { s = String(s[..<r.lowerBound]) }
        }
        s = s.trimmingASCIISpaces()
        return s.count > 300 ? String(s.prefix(300)) + "…" : s
    }
}

/// The instance's broker asking another authority's token endpoint (see `EntraTokenBroker.atAuthority`).
struct AuthorityBoundBroker: TokenBroker {
    let broker: EntraTokenBroker
    let authority: String
    let http: HTTPClient

    func token(_ request: TokenRequest) throws -> BrokeredToken {
        try broker.token(request, authority: authority, http: http)
    }
}
