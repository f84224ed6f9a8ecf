import GatewayStore

/// Every bucket of a request in one round trip: `mcp_fcgi_take` (see the migration) locks,
/// refills and takes from them all or none, so limits are exact across every host.
extension PostgresStore: RateLimiter {
    public func take(_ buckets: [RateBucket], now: Double) throws -> Double? {
        guard !buckets.isEmpty else { return nil }
        return try pool.withConnection { c in
            try c.query("SELECT mcp_fcgi_take($1::text[], $2::float8[], $3::float8[], $4)", Self.takeParameters(buckets, now: now))
                .first?.double(0)
        }
    }

    /// The four parameters of `mcp_fcgi_take`, the buckets in key order.
    static func takeParameters(_ buckets: [RateBucket], now: Double) -> [PGValue] {
        let sorted = buckets.sorted { $0.key < $1.key }
        return [.textArray(sorted.map(\.key)), .doubleArray(sorted.map(\.perMinute)), .doubleArray(sorted.map(\.burst)), .double(now)]
    }
}
