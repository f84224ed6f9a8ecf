/// The state every process of a deployment shares, every concern at once: what one
/// engine (today SQLite) provides. Code that needs one concern takes its interface instead.
public typealias GatewayStore = BlockList & RateLimiter & AuditLog & MCPSessionStore & WorkspaceMappingStore
    & BackendSessionStore & OAuthStore & StoreHealthCheck
