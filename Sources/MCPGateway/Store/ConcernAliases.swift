// Until the store is split by concern: every concern is the whole store.
public typealias BlockList = GatewayStore
public typealias RateLimiter = GatewayStore
public typealias AuditLog = GatewayStore
public typealias MCPSessionStore = GatewayStore
