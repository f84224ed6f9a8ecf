/// The shared state, one interface per concern, for wiring: each part of the request path
/// is given only the field it needs, so one concern can move to another engine (a server
/// database for multi-host sites, a faster local one for rate limits) without touching the rest.
public struct StateStores: Sendable {
    public var blocks: BlockList
    public var rateLimiter: RateLimiter
    public var audit: AuditLog
    public var sessions: MCPSessionStore
    public var mappings: WorkspaceMappingStore
    public var backendSessions: BackendSessionStore
    public var oauth: OAuthStore
    public var health: StoreHealthCheck
    /// API keys, where the engine keeps them (nil: this engine has none, and the api_key provider cannot be used).
    public var apiKeys: APIKeyStore?
    /// Opaque-token verdicts (nil: this engine keeps none, and the github and google_access_token providers cannot be used).
    public var introspections: IntrospectionCache?

    public init(blocks: BlockList, rateLimiter: RateLimiter, audit: AuditLog, sessions: MCPSessionStore,
                mappings: WorkspaceMappingStore, backendSessions: BackendSessionStore, oauth: OAuthStore, health: StoreHealthCheck,
                apiKeys: APIKeyStore? = nil, introspections: IntrospectionCache? = nil) {
        self.blocks = blocks
        self.rateLimiter = rateLimiter
        self.audit = audit
        self.sessions = sessions
        self.mappings = mappings
        self.backendSessions = backendSessions
        self.oauth = oauth
        self.health = health
        self.apiKeys = apiKeys
        self.introspections = introspections
    }

    /// One engine serving every concern.
    public init(_ engine: GatewayStore) {
        self.init(blocks: engine, rateLimiter: engine, audit: engine, sessions: engine, mappings: engine,
                  backendSessions: engine, oauth: engine, health: engine, apiKeys: engine as? APIKeyStore,
                  introspections: engine as? IntrospectionCache)
    }

    /// Every concern in the SQLite database at `path`, created or migrated as needed, except the
    /// rate limits: those live in the shared-memory table beside it, whose generation number also
    /// tells every process that the blocks changed; it is mapped on first use
    /// (`SharedBucketTableOnFirstUse`). `durable: false` is for the serving processes
    /// (see `SQLiteDatabase`). With `auditJournal` the audit trail is written to per-process
    /// journals beside the store and moved into it in batches (`JournaledAuditLog`); reads see both.
    public static func sqlite(path: String, durable: Bool = true, auditJournal: Bool = false) throws -> StateStores {
        let limits = SharedBucketTableOnFirstUse(path: SharedBucketTable.path(besideStore: path))
        let store = try SQLiteStore(path: path, durable: durable, blockSignal: limits)
        // Every concern named rather than found with `as?` (`init(_:)`): the first run of each of those
        // casts scans all of the binary's conformance records, about 0.2 M instructions in a CGI process.
        var stores = StateStores(blocks: store, rateLimiter: limits, audit: store, sessions: store, mappings: store,
                                 backendSessions: store, oauth: store, health: store, apiKeys: store, introspections: store)
        if auditJournal {
            stores.audit = JournaledAuditLog(directory: JournaledAuditLog.directory(forStore: path), store: store, sampleLimiter: store)
        }
        return stores
    }
}
