/// What a health check found.
public struct StoreHealth: Sendable {
    /// The database and its write-ahead log, in bytes.
    public var bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }
}

/// What `/ready`, `system_status` and `mcp-fcgi doctor` ask of the store.
public protocol StoreHealthCheck: AnyObject, Sendable {
    /// Proves the store takes writes (a write transaction that changes nothing) and says how big it is.
    func health() throws -> StoreHealth
}
