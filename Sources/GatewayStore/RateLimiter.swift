/// One token bucket: `burst` requests at once, refilled at `perMinute`.
public struct RateBucket: Sendable {
    public let key: String
    public let perMinute: Double
    public let burst: Double
    public init(key: String, perMinute: Double, burst: Double) {
        self.key = key
        self.perMinute = perMinute
        self.burst = burst
    }
}

/// Per-user and per-tenant rate limits, shared by every process of the site.
public protocol RateLimiter: AnyObject, Sendable {
    /// Takes one token from each bucket (capacity `burst`, refilled at `perMinute`), all
    /// or none. Returns nil when allowed, or the seconds until every bucket has a token.
    func take(_ buckets: [RateBucket], now: Double) throws -> Double?
}
