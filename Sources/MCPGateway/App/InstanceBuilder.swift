import SharedMetrics
import GatewayStore
import PostgresStore
import EntraAuth
import FoundationEssentials
import GatewaySupport
import UpstreamHTTP

/// The composition root: builds an instance as its config describes (verifier, policy,
/// metadata, store, tools, stages). `serve`, `doctor` and the operator commands all build
/// through here, so what they check is what serves.
public struct InstanceBuilder {
    public let config: GatewayConfig
    /// Other instances share the host: `/me` and the bare metadata path then belong to none.
    public var sharesHost: Bool
    /// Worker threads of this process (1 for CGI), as `system_status` reports them.
    public var workerThreads = 1
    /// Tools beyond the configured ones (tests, embedders).
    public var extraTools: [Tool] = []
    /// The shared counters file, mapped once per process; nil maps it here.
    public var counters: SharedCounters?
    /// The stores to use instead of the configured SQLite file (tests of store failures).
    public var stores: StateStores?

    public init(config: GatewayConfig, sharesHost: Bool = false) {
        self.config = config
        self.sharesHost = sharesHost
    }

    /// Every instance of a config, sharing one mapping of the counters file.
    public static func buildAll(config: ProcessConfig, workerThreads: Int = 1) throws -> [GatewayInstance] {
        let instances = config.instances
        guard !instances.isEmpty else { throw ServerError("the configuration defines no instance") }
        // Made first, or a fresh installation's first process would map the counters once per instance.
        try StateDirectory.ensure(instances[0].stateDirectory)
        let counters = GatewayMetrics.openCounters(stateDirectory: instances[0].stateDirectory)
        return try instances.map { instance in
            var builder = InstanceBuilder(config: instance, sharesHost: instances.count > 1)
            builder.workerThreads = workerThreads
            builder.counters = counters
            return try builder.build()
        }
    }

    /// The token verifier for the instance's `auth` section.
    public static func verifier(for config: GatewayConfig, metrics: GatewayMetrics) throws -> TokenVerifier {
        let entra = entraConfiguration(for: config)
        return try TokenVerifier(configuration: entra,
                                 http: MeteredFetcher(CurlHTTPFetcher(options: entra.http), upstream: "entra_keys", metrics: metrics))
    }

    /// Every provider `auth.providers` configures, behind one router. Without the key: Entra alone.
    public static func tokenProviders(for config: GatewayConfig, entra: TokenVerifier?, stores: StateStores,
                                      metrics: GatewayMetrics) throws -> BearerTokenProvider {
        if config.auth.providers == nil, let entra { return entra }
        var issuers: [String: BearerTokenProvider] = [:]
        var fallback: BearerTokenProvider?
        var apiKeys: (prefix: String, provider: BearerTokenProvider)?
        var opaque: [OpaqueTokenProvider] = []
        func context(_ ttl: Int, _ upstream: String, lookupsPerMinute: Int) throws -> IntrospectionContext {
            guard let cache = stores.introspections else { throw ServerError("opaque-token providers need a store that caches their answers") }
            return IntrospectionContext(http: MeteredHTTPClient.wrap(CurlHTTPClient(options: options), upstream: upstream, metrics: metrics),
                                        cache: cache, cacheTTLSeconds: ttl, allowedTenants: config.auth.allowedTenants,
                                        acceptAnyTenant: config.auth.acceptAnyTenant, lookups: (stores.rateLimiter, lookupsPerMinute))
        }
        // Asking a provider about a token must fail fast: the caller is waiting, and a 503 is the answer when it cannot.
        var options = CurlHTTPClientOptions.gateway
        options.totalTimeoutSeconds = 10
        options.maxRetries = 1
        options.caBundlePath = config.auth.caBundle
        options.allowInsecureHTTPForTesting = config.auth.allowInsecureHTTPForTesting
        for provider in config.resolvedProviders() {
            switch provider {
            case .entra:
                fallback = entra
            case .oidc(let o):
                let c = oidcConfiguration(o, for: config)
                issuers[o.issuer] = try TokenVerifier(oidc: c, http: MeteredFetcher(CurlHTTPFetcher(options: c.http),
                                                                                   upstream: "oidc_keys", metrics: metrics))
            case .googleAccessToken(let g):
                opaque.append(GoogleAccessTokenProvider(settings: g, context: try context(g.cacheTTLSeconds, "google_tokeninfo", lookupsPerMinute: g.lookupsPerMinute),
                                                        emailDomains: config.tenantMapping().emailDomains))
            case .github(let g):
                opaque.append(GitHubProvider(settings: g, context: try context(g.cacheTTLSeconds, "github", lookupsPerMinute: g.lookupsPerMinute)))
            case .apiKey:
                guard let store = stores.apiKeys else { throw ServerError("the api_key provider needs a store that keeps API keys") }
                apiKeys = (APIKeyIssuer.prefix, APIKeyProvider(issuer: try APIKeyIssuer(stateDirectory: config.stateDirectory), store: store,
                                                               allowedTenants: config.auth.allowedTenants, acceptAnyTenant: config.auth.acceptAnyTenant))
            }
        }
        return ProviderRouter(issuers: issuers, fallbackJWT: fallback,
                              fallbackIssuerTemplates: entraConfiguration(for: config).issuerTemplates, apiKeys: apiKeys,
                              opaque: opaque)
    }

    /// One oidc provider's verifier settings; skew, cache, CA bundle and test switches from the `auth` section.
    static func oidcConfiguration(_ o: OIDCProviderSettings, for config: GatewayConfig) -> OIDCConfiguration {
        let auth = config.auth
        var c = OIDCConfiguration(name: o.name, issuer: o.issuer, audiences: o.audiences, stateDirectory: config.stateDirectory)
        c.authorizedParty = o.authorizedParty
        c.allowedAlgorithms = o.algorithms
        c.claims = o.claims
        c.jwksURI = o.jwksURI
        c.clockSkewSeconds = Int64(auth.clockSkewSeconds)
        c.tokenCacheCapacity = auth.tokenCacheEntries
        c.jwksRefreshIntervalSeconds = Int64(auth.jwksRefreshHours) * 3600
        c.http.caBundlePath = auth.caBundle
        c.http.allowInsecureHTTPForTesting = auth.allowInsecureHTTPForTesting
        return c
    }

    /// What the verifier is configured with: authority, tenants, audiences, token kinds, key endpoints.
    public static func entraConfiguration(for config: GatewayConfig) -> EntraConfiguration {
        let auth = config.auth
        var entra = EntraConfiguration(audiences: auth.audiences, allowedTenants: auth.allowedTenants,
                                       stateDirectory: config.stateDirectory)
        entra.authority = auth.authority
        entra.v1IssuerAuthority = auth.acceptV1Tokens ? entra.v1IssuerAuthority : nil
        entra.acceptAnyTenant = auth.acceptAnyTenant
        entra.acceptDelegatedTokens = auth.acceptDelegatedTokens
        entra.acceptAppOnlyTokens = auth.acceptAppOnlyTokens
        entra.clockSkewSeconds = Int64(auth.clockSkewSeconds)
        entra.tokenCacheCapacity = auth.tokenCacheEntries
        entra.jwksURI = auth.jwksURI
        entra.jwksRefreshIntervalSeconds = Int64(auth.jwksRefreshHours) * 3600
        entra.http.caBundlePath = auth.caBundle
        entra.http.allowInsecureHTTPForTesting = auth.allowInsecureHTTPForTesting
        entra.developmentMode = auth.mode == .development
        return entra
    }

    /// The instance's shared state in its configured store, the state directory made first.
    /// Serving processes open it with `durable: false` (see `SQLiteDatabase`); one-off commands durable.
    /// The audit trail goes through per-process journals beside the store's place in the state
    /// directory (`JournaledAuditLog`), on either engine: a PostgreSQL outage holds records there.
    /// With `store.engine: "postgres"` every concern is on the server, each process with its own pool.
    public static func openStores(for config: GatewayConfig, durable: Bool) throws -> StateStores {
        try StateDirectory.ensure(config.stateDirectory)
        switch config.storeEngine {
        case .sqlite: return try StateStores.sqlite(path: config.resolvedStorePath, durable: durable, auditJournal: true)
        case .postgres(let pg):
            return try StateStores.postgres(settings: try pg.resolved(),
                                            auditJournal: JournaledAuditLog.directory(forStore: config.resolvedStorePath))
        }
    }

    /// The files an instance keeps that a command run as root may create: the store's, the
    /// metrics counters and the development signing key.
    public static func stateFiles(for config: GatewayConfig) -> [String] {
        (config.storeEngine == .sqlite ? SQLiteStore.files(atPath: config.resolvedStorePath) : [])
            + [GatewayMetrics.countersPath(stateDirectory: config.stateDirectory), config.stateDirectory + "/" + DevSigningKey.fileName,
               config.stateDirectory + "/" + APIKeyIssuer.secretFileName]
    }

    /// Run as root, gives the instance's files to the owner of the state directory, the user the
    /// service runs as, so the service can still open what the command created.
    public static func handStateFilesToServiceUser(for config: GatewayConfig) {
        StateDirectory.handToServiceUser(stateFiles(for: config), in: config.stateDirectory)
    }

    /// RFC 9728 metadata: which authorization servers issue tokens for this instance.
    public static func metadata(for config: GatewayConfig) -> ResourceMetadata {
        let auth = config.auth
        // With the authorization front on, clients sign in through it, not at Entra directly.
        if let oauth = config.oauth {
            return ResourceMetadata(publicURL: config.server.publicURL, authorizationServers: [oauth.issuer],
                                    scopesSupported: auth.scopesSupported, resourceName: auth.resourceName ?? config.server.name)
        }
        let issuerBase = auth.mode == .development ? DevTokenMinter.issuerAuthority : auth.authority
        var servers: [String] = []
        for provider in config.resolvedProviders() {
            switch provider {
            case .entra: servers += (auth.allowedTenants.isEmpty ? ["organizations"] : auth.allowedTenants).map { "\(issuerBase)/\($0)/v2.0" }
            case .oidc(let o): servers.append(o.issuer)
            case .googleAccessToken: servers.append("https://accounts.google.com")
            case .github: servers.append("https://github.com/login/oauth")
            case .apiKey: break
            }
        }
        return ResourceMetadata(publicURL: config.server.publicURL, authorizationServers: servers,
                                scopesSupported: auth.scopesSupported, resourceName: auth.resourceName ?? config.server.name)
    }

    public func build() throws -> GatewayInstance {
        let config = self.config, auth = config.auth
        try StateDirectory.ensure(config.stateDirectory)
        let metrics = GatewayMetrics(counters: counters ?? GatewayMetrics.openCounters(stateDirectory: config.stateDirectory),
                                     instance: sharesHost ? config.instanceName : nil)
        // Entra's verifier only when Entra vouches for callers: its settings are not required otherwise.
        let verifier = config.auth.trustsEntra ? try Self.verifier(for: config, metrics: metrics) : nil
        let metadata = Self.metadata(for: config)
        let stores = try self.stores ?? Self.openStores(for: config, durable: false)
        let tokens = try Self.tokenProviders(for: config, entra: verifier, stores: stores, metrics: metrics)
        let startedAt = Date().timeIntervalSince1970
        let operations = OperationsStatus(config: config, store: stores.health, verifier: verifier, metrics: metrics,
                                          startedAt: startedAt, workerThreads: workerThreads)
        let registry = try tools(stores: stores, metrics: metrics, operations: operations)

        let authenticator = Authenticator(verifier: verifier, requiredScopes: auth.requiredScopes, policy: config.permissions,
                                          instance: config.instanceName, tenants: config.tenants, trustedProxy: config.trustedProxy,
                                          allowedTenants: auth.allowedTenants, acceptAnyTenant: auth.acceptAnyTenant,
                                          metrics: metrics, authority: auth.authority, tokens: tokens)
        let challenges = Challenges(metadata: metadata, policy: config.permissions, requiredScopes: auth.requiredScopes)
        let server = ServerIdentity(name: config.server.name, version: GatewayVersion.string,
                                    instructions: config.server.instructions, startedAt: startedAt)
        let routes = InstanceRoutes(mcpPath: config.server.mcpPath,
                                    metadataPaths: ResourceMetadataEndpoint.paths(mcpPath: config.server.mcpPath, sharesHost: sharesHost),
                                    metadata: ResourceMetadataEndpoint(metadata: metadata),
                                    me: sharesHost ? nil : MeEndpoint(authenticator: authenticator, challenges: challenges,
                                                                                   blocks: stores.blocks, metrics: metrics),
                                    authorizationServer: try config.oauth.map {
                                        // The config refuses an oauth section without Entra (`entraOnlyFeatures`).
                                        guard let verifier else { throw ServerError("oauth signs users in with Entra: list entra in auth.providers") }
                                        return try AuthorizationServer.make(config: config, oauth: $0, stores: stores, verifier: verifier, metrics: metrics)
                                    })
        let audit = Audit(log: stores.audit, instance: config.instanceName, policy: config.audit, metrics: metrics, registry: registry,
                          ceiling: StoreCeilingWatch(store: stores.health, ceiling: StoreCeiling(maxBytes: config.storeMaxBytes)))
        // The request path, in order (ARCHITECTURE.md). Audit wraps everything after routing,
        // and begins an allowed tool call's record just before the tool runs.
        let pipeline = Pipeline([
            StripUntrustedAssertions(proxy: config.trustedProxy),
            routes,
            audit,
            TransportRules(allowedOrigins: config.allowedOrigins, maxJSONDepth: config.limits.maxJSONDepth,
                           maxBodyBytes: config.limits.maxBodyBytes, sessionsEnabled: config.sessions.enabled),
            Authenticate(authenticator: authenticator, challenges: challenges),
            Admission(blocks: stores.blocks, limiter: stores.rateLimiter, limits: config.rateLimits, metrics: metrics),
            Sessions(store: stores.sessions, enabled: config.sessions.enabled, idleMinutes: config.sessions.idleMinutes),
            Dispatch(registry: registry, server: server, pageSize: config.limits.toolsPageSize),
            AuthorizeTool(challenges: challenges, server: server),
            audit.toolStart,
        ], then: CallTool(server: server, challenges: challenges))
        return GatewayInstance(config: config, pipeline: pipeline, paths: routes.paths, stores: stores, metrics: metrics,
                               authenticator: authenticator, registry: registry, operations: operations)
    }

    /// Built-in tools, then Power BI and backend tools, then any extra ones.
    private func tools(stores: StateStores, metrics: GatewayMetrics, operations: OperationsStatus) throws -> ToolRegistry {
        let registry = ToolRegistry()
        try registry.register(WhoAmITool())
        try registry.register(ServerInfoTool(developmentMode: config.auth.mode == .development))
        try registry.register(AuditLogTool(store: stores.audit))
        // Power BI and backend tools share the instance's token broker: one credential (its files read once), one token cache.
        let broker = try EntraTokenBroker.forInstance(config, metrics: metrics)
        try PowerBITools.register(into: registry, config: config, store: stores.mappings, broker: broker, metrics: metrics)
        try BackendTools.register(into: registry, config: config, store: stores.backendSessions, broker: broker, metrics: metrics)
        try registry.register(SystemStatusTool(operations: operations))
        for tool in extraTools { try registry.register(tool) }
        return registry
    }
}
