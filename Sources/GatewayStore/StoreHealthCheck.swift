/// What a health check found.
public struct StoreHealth: Sendable {
    /// The database and its write-ahead log, in bytes.
    public var bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }
}

/// What `/ready`, `system_status` and `mcp-fcgi doctor` ask of the store.
public protocol StoreHealthCheck: AnyObject, Sendable {
    /// Proves the store opens and reads (its schema version) and says how big it is. Writes
    /// nothing and takes no write lock, so a probe every second costs the site no contention.
    func health() throws -> StoreHealth
    /// Proves the store takes writes: a write transaction that changes nothing (`doctor`).
    func probeWrite() throws
}

/// The size the store may reach (`store.max_bytes`) before `/ready`, `system_status` and
/// `doctor` raise the alarm: a store filling its disk would otherwise fail every request at once.
public struct StoreCeiling: Sendable {
    public let maxBytes: Int64

    public init(maxBytes: Int64) { self.maxBytes = maxBytes }

    /// nil while under the ceiling, else what is wrong and what to do.
    public func alarm(_ health: StoreHealth) -> String? {
        guard health.bytes > maxBytes else { return nil }
        return "the shared store is \(health.bytes) bytes, above store.max_bytes (\(maxBytes)): " +
            "shorten audit.retention_days or raise the ceiling"
    }
}
