import MCPJSON

/// Who is calling, as far as the authentication stage could establish it.
public struct Caller: Sendable {
    public let isAuthenticated: Bool
    /// A stable key for per-caller caches and limits ("tid/oid" once tokens are verified).
    public let key: String
    /// What `whoami` shows: identity facts only, never the token.
    public let identity: JSONObject
    public let permissions: Set<String>

    public init(isAuthenticated: Bool, key: String, identity: JSONObject, permissions: Set<String>) {
        self.isAuthenticated = isAuthenticated
        self.key = key
        self.identity = identity
        self.permissions = permissions
    }

    public static let anonymous = Caller(isAuthenticated: false, key: "anonymous",
                                         identity: JSONObject(pairs: [("authenticated", false)]),
                                         permissions: [])

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
