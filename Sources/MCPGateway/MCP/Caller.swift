import FoundationEssentials
import EntraAuth
import GatewayStore
import MCPJSON
import GatewaySupport

/// Who is calling, as far as the authentication stage could establish it.
public struct Caller: Sendable {
    /// The fields, in one immutable object: a caller is copied into every stage, record and
    /// tool context of a request, and a copy of the fields themselves (a principal among them)
    /// took about 25 reference counts, where this takes one.
    private final class Fields: @unchecked Sendable {
        let key: String
        let permissions: Set<String>
        let tenantId: String?
        let principal: Principal?
        let bearerToken: String?
        let instance: String
        let tenant: TenantRecord?
        let describe: @Sendable () -> JSONObject
        /// `describe`'s answer once asked for: a caller is kept for its client's next requests
        /// (`RecentCallers`), and the identity never changes. Guarded by `lock`.
        private var identity: JSONObject?
        /// Its JSON, made once `whoami` answers with it. Guarded by `lock`.
        private var identityJSON: [UInt8]?
        /// The rate-limit buckets admission takes for this caller, with the limits they were
        /// made for. Guarded by `lock`.
        private var rateBuckets: (limits: GatewayConfig.RateLimits, buckets: [RateBucket])?
        private let lock = Lock()

        init(key: String, permissions: Set<String>, tenantId: String?, principal: Principal?, bearerToken: String?,
             instance: String, tenant: TenantRecord?, describe: @escaping @Sendable () -> JSONObject) {
            self.key = key
            self.permissions = permissions
            self.tenantId = tenantId
            self.principal = principal
            self.bearerToken = bearerToken
            self.instance = instance
            self.tenant = tenant
            self.describe = describe
        }

        func describedIdentity() -> JSONObject {
            lock.lock()
            defer { lock.unlock() }
            return identityWhileLocked()
        }

        func describedIdentityWithJSON() -> (object: JSONObject, json: [UInt8]) {
            lock.lock()
            defer { lock.unlock() }
            let object = identityWhileLocked()
            if let identityJSON { return (object, identityJSON) }
            let json = JSONWriter.serialize(.object(object))
            identityJSON = json
            return (object, json)
        }

        func rateBuckets(for limits: GatewayConfig.RateLimits, make: () -> [RateBucket]) -> [RateBucket] {
            lock.lock()
            defer { lock.unlock() }
            if let rateBuckets, rateBuckets.limits == limits { return rateBuckets.buckets }
            let made = make()
            rateBuckets = (limits, made)
            return made
        }

        private func identityWhileLocked() -> JSONObject {
            if let identity { return identity }
            let made = describe()
            identity = made
            return made
        }
    }

    private let fields: Fields

    /// A stable key for per-caller caches and limits ("tid/oid" once tokens are verified).
    public var key: String { fields.key }
    public var permissions: Set<String> { fields.permissions }
    /// The verified tenant; tools scope what they show to it.
    public var tenantId: String? { fields.tenantId }
    /// The verified token's facts (nil only for callers built by tests without one).
    public var principal: Principal? { fields.principal }
    /// The caller's own verified access token. Used only as the On-Behalf-Of assertion:
    /// never forwarded upstream, logged, audited or shown.
    public var bearerToken: String? { fields.bearerToken }
    /// The instance (client deployment) the request came in on.
    public var instance: String { fields.instance }
    /// The tenant record the verified `tid` maps to, when the configuration has one.
    public var tenant: TenantRecord? { fields.tenant }

    /// `identity` is built only when a tool or endpoint shows it: most requests never need it.
    public init(key: String, permissions: Set<String>, tenantId: String? = nil,
                principal: Principal? = nil, bearerToken: String? = nil, instance: String = "default",
                tenant: TenantRecord? = nil, identity: @escaping @Sendable () -> JSONObject) {
        fields = Fields(key: key, permissions: permissions, tenantId: tenantId, principal: principal, bearerToken: bearerToken,
                        instance: instance, tenant: tenant, describe: identity)
    }

    /// What `whoami` shows: identity facts only, never the token.
    public var identity: JSONObject { fields.describedIdentity() }

    /// `identity` and its JSON, serialised once for all the requests this caller makes.
    var identityWithJSON: (object: JSONObject, json: [UInt8]) { fields.describedIdentityWithJSON() }

    /// The buckets `make` gives for these limits, made once for all the requests this caller
    /// makes (a caller is kept for its client's next requests): their keys are built from the
    /// verified tenant and user, which never change for a caller.
    func rateBuckets(for limits: GatewayConfig.RateLimits, make: () -> [RateBucket]) -> [RateBucket] {
        fields.rateBuckets(for: limits, make: make)
    }

    public func may(_ permission: String?) -> Bool {
        guard let permission else { return true }
        return fields.permissions.contains(permission)
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
