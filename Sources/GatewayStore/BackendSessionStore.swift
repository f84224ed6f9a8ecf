import EntraAuth

/// Whose session with which backend: one row per (instance, tenant, user, backend).
public struct BackendSessionKey: Hashable, Sendable {
    public let instance: String
    public let tenant: String
    public let user: String
    public let backend: String

    public init(instance: String, tenant: String, user: String, backend: String) {
        self.instance = instance
        self.tenant = tenant.lowercased()
        self.user = Principal.canonicalUserID(user)
        self.backend = backend
    }

    /// Bound into the seal, with the backend's URL, so a value copied to another row or
    /// pointed at another host does not open.
    package func associatedData(baseURL: String) -> [UInt8] {
        Array("mcp-fcgi backend session v1\u{0}\(instance)\u{0}\(tenant)\u{0}\(user)\u{0}\(backend)\u{0}\(baseURL)".utf8)
    }
}

/// The cookies of one backend session, sealed (AES-256-GCM); the store never sees them in the clear.
public struct StoredBackendSession: Equatable, Sendable {
    public var sealed: [UInt8]
    /// When the backend said the session ends (cookie Max-Age / Expires), if it did.
    public var expiresAt: Double?
    /// When the backend last confirmed it through its user-info endpoint.
    public var checkedAt: Double

    public init(sealed: [UInt8], expiresAt: Double?, checkedAt: Double) {
        self.sealed = sealed
        self.expiresAt = expiresAt
        self.checkedAt = checkedAt
    }
}

/// Users' sessions with customer backends, sealed, so any process can use them.
public protocol BackendSessionStore: AnyObject, Sendable {
    /// A user's sealed session with a backend, if one is stored.
    func backendSession(_ key: BackendSessionKey) throws -> StoredBackendSession?
    /// Stores (or replaces) the user's session with a backend.
    func saveBackendSession(_ key: BackendSessionKey, _ session: StoredBackendSession, now: Double) throws
    /// Records a successful check, unless another process has replaced the session since.
    func markBackendSessionChecked(_ key: BackendSessionKey, sealed: [UInt8], at: Double) throws
    func deleteBackendSession(_ key: BackendSessionKey) throws -> Bool
}
