import EntraAuth
import MCPJSON

/// Who is calling, as far as the authentication stage could establish it.
public struct Caller: Sendable {
    /// A stable key for per-caller caches and limits ("tid/oid" once tokens are verified).
    public let key: String
    public let permissions: Set<String>
    /// The verified tenant; tools scope what they show to it.
    public let tenantId: String?
    /// The verified token's facts (nil only for callers built by tests without one).
    public let principal: Principal?
    /// The caller's own verified access token. Used only as the On-Behalf-Of assertion:
    /// never forwarded upstream, logged, audited or shown.
    public let bearerToken: String?
    /// The instance (client deployment) the request came in on.
    public let instance: String
    /// The tenant record the verified `tid` maps to, when the configuration has one.
    public let tenant: TenantRecord?
    /// Built only when a tool or endpoint shows it: most requests never need it.
    private let describe: @Sendable () -> JSONObject

    public init(key: String, permissions: Set<String>, tenantId: String? = nil,
                principal: Principal? = nil, bearerToken: String? = nil, instance: String = "default",
                tenant: TenantRecord? = nil, identity: @escaping @Sendable () -> JSONObject) {
        self.tenantId = tenantId
        self.principal = principal
        self.bearerToken = bearerToken
        self.instance = instance
        self.tenant = tenant
        self.key = key
        self.permissions = permissions
        self.describe = identity
    }

    /// What `whoami` shows: identity facts only, never the token.
    public var identity: JSONObject { describe() }


    public func may(_ permission: String?) -> Bool {
        guard let permission else { return true }
        return permissions.contains(permission)
    }
}

/// The server's own name and version, as `initialize`, `server/discover` and `/health` report it.
public struct ServerIdentity: Sendable {
    public let name: String
    public let version: String
    public let instructions: String?
    public let startedAt: Double

    var json: JSONValue { ["name": .string(name), "version": .string(version)] }
}
