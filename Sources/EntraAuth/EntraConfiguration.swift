/// Every knob of the verifier, with defaults suited to Entra ID v2 tokens.
public struct EntraConfiguration {
    /// Login authority: `https://login.microsoftonline.com` (global),
    /// `https://login.microsoftonline.us`, `https://login.partner.microsoftonline.cn`, or a test server.
    public var authority = "https://login.microsoftonline.com"
    /// Authority of v1 issuers (`https://sts.windows.net/{tid}/`); nil refuses v1 tokens.
    public var v1IssuerAuthority: String? = "https://sts.windows.net"
    /// Our API's audiences: its client ID and App ID URI (`api://...`).
    public var audiences: [String]
    /// Tenant IDs (GUIDs) whose tokens are accepted.
    public var allowedTenants: [String]
    /// Accept tokens from any tenant. A separate, explicit opt-in; the allow-list is then ignored.
    public var acceptAnyTenant = false
    public var acceptDelegatedTokens = true
    /// App-only (client credentials) tokens carry no user; refused unless enabled.
    public var acceptAppOnlyTokens = false
    public var allowedAlgorithms: Set<JWSAlgorithm> = [.rs256]
    /// Leeway for exp/nbf/iat. 120 s: servers run NTP, tokens live 60-90 min.
    public var clockSkewSeconds: Int64 = 120
    public var maxTokenBytes = CompactJWS.defaultMaxBytes
    /// Verified tokens kept per process, LRU (about 1 kB each).
    public var tokenCacheCapacity = 2_000

    /// Shared state: JWKS cache, fetch record and (dev mode) the signing key. Owner-only.
    public var stateDirectory: String
    /// Discovery tenant segment; default: the single allowed tenant, else `organizations`.
    public var metadataTenant: String?
    /// Skip discovery and fetch keys from this URL.
    public var jwksURI: String?
    public var jwksRefreshIntervalSeconds: Int64 = 12 * 3600
    public var unknownKidRefetchIntervalSeconds: Int64 = 300
    public var fetchFailureRetryIntervalSeconds: Int64 = 30
    /// Permits refresh intervals outside 12-24 h and refetch limits under 5 min. Tests only.
    public var allowShortIntervalsForTesting = false
    public var http = HTTPFetchOptions()

    /// Trust only the local dev key (`DevSigningKey` in `stateDirectory`), issuer
    /// `https://dev.mcp-fcgi.invalid/{tid}/v2.0`; no network.
    public var developmentMode = false

    public init(audiences: [String], allowedTenants: [String], stateDirectory: String) {
        self.audiences = audiences
        self.allowedTenants = allowedTenants
        self.stateDirectory = stateDirectory
    }

    /// The issuer templates the claims policy accepts.
    public var issuerTemplates: [String] {
        if developmentMode { return [DevTokenMinter.issuerTemplate] }
        var t = [OpenIDConfiguration.trimmedAuthority(authority) + "/{tenantid}/v2.0"]
        if let v1 = v1IssuerAuthority { t.append(OpenIDConfiguration.trimmedAuthority(v1) + "/{tenantid}/") }
        return t
    }

    public func validate() throws {
        guard !audiences.isEmpty else { throw AuthConfigurationError("at least one audience is required") }
        guard acceptAnyTenant || !allowedTenants.isEmpty else {
            throw AuthConfigurationError("allowedTenants is empty; list tenants or set acceptAnyTenant explicitly")
        }
        for t in allowedTenants where !IssuerTenantCheck.isGUID(t) {
            throw AuthConfigurationError("allowed tenant \(t) is not a tenant ID (GUID)")
        }
        guard acceptDelegatedTokens || acceptAppOnlyTokens else { throw AuthConfigurationError("no token kind is accepted") }
        guard !allowedAlgorithms.isEmpty else { throw AuthConfigurationError("no signing algorithm is allowed") }
        guard (0...300).contains(clockSkewSeconds) else { throw AuthConfigurationError("clockSkewSeconds must be 0-300") }
        guard !stateDirectory.isEmpty else { throw AuthConfigurationError("stateDirectory is required") }
        if !allowShortIntervalsForTesting {
            guard (12 * 3600...24 * 3600).contains(jwksRefreshIntervalSeconds) else {
                throw AuthConfigurationError("jwksRefreshIntervalSeconds must be between 12 and 24 hours")
            }
            guard unknownKidRefetchIntervalSeconds >= 300 else {
                throw AuthConfigurationError("unknownKidRefetchIntervalSeconds must be at least 300")
            }
            guard fetchFailureRetryIntervalSeconds >= 10 else {
                throw AuthConfigurationError("fetchFailureRetryIntervalSeconds must be at least 10")
            }
        }
    }

    public var resolvedMetadataTenant: String {
        metadataTenant ?? (!acceptAnyTenant && allowedTenants.count == 1 ? allowedTenants[0] : "organizations")
    }
}

extension TokenVerifier {
    /// A verifier for the configuration: Entra keys over HTTPS with the shared
    /// cache, or in development mode the local dev key only. `http` fetches the keys
    /// (UpstreamHTTP's `CurlHTTPFetcher` with `c.http`); development mode needs none.
    public convenience init(configuration c: EntraConfiguration, http: HTTPFetching? = nil,
                            clock: @escaping Clock = systemClockSeconds) throws {
        try c.validate()
        let policy = ClaimsPolicy.entra(issuerTemplates: c.issuerTemplates, allowedTenants: c.allowedTenants,
                                        acceptAnyTenant: c.acceptAnyTenant, audiences: c.audiences,
                                        acceptDelegated: c.acceptDelegatedTokens, acceptAppOnly: c.acceptAppOnlyTokens,
                                        clockSkewSeconds: c.clockSkewSeconds)
        let keys: SigningKeyProvider
        if c.developmentMode {
            let devKey = try DevSigningKey.loadOrCreate(stateDirectory: c.stateDirectory)
            keys = StaticKeyProvider(keys: [try devKey.verificationKey()])
        } else {
            var s = JWKSKeyStore.Settings(authority: c.authority, metadataTenant: c.resolvedMetadataTenant,
                                          jwksURI: c.jwksURI, stateDirectory: c.stateDirectory)
            s.refreshIntervalSeconds = c.jwksRefreshIntervalSeconds
            s.unknownKidRefetchIntervalSeconds = c.unknownKidRefetchIntervalSeconds
            s.failureRetryIntervalSeconds = c.fetchFailureRetryIntervalSeconds
            s.http = c.http
            guard let http else { throw AuthConfigurationError("Entra keys need an HTTP fetcher for the key endpoints") }
            keys = try JWKSKeyStore(settings: s, http: http, clock: clock)
        }
        self.init(policy: policy, keys: keys, allowedAlgorithms: c.developmentMode ? [.rs256] : c.allowedAlgorithms,
                  maxTokenBytes: c.maxTokenBytes, cacheCapacity: c.tokenCacheCapacity, clock: clock)
    }
}
