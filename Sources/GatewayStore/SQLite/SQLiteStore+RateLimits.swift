extension SQLiteStore: RateLimiter {
    public func take(_ buckets: [RateBucket], now: Double) throws -> Double? {
        guard !buckets.isEmpty else { return nil }
        return try db.transaction(write: true) { db in try Self.take(buckets, now: now, in: db) }
    }

    /// The token buckets' arithmetic, inside a write transaction the caller holds (the audit
    /// sample shares it with the insert it allows).
    static func take(_ buckets: [RateBucket], now: Double, in db: SQLiteDatabase) throws -> Double? {
        var levels: [Double] = []
        var wait = 0.0
        for b in buckets {
            let row = try db.query("SELECT tokens, updated FROM rate_buckets WHERE key = ?", [.text(b.key)]).first
            var tokens = b.burst
            if let row, let t = row[0].double, let updated = row[1].double {
                tokens = min(b.burst, t + max(0, now - updated) * b.perMinute / 60)
            }
            if tokens < 1 { wait = max(wait, (1 - tokens) * 60 / b.perMinute) }
            levels.append(tokens)
        }
        if wait > 0 { return wait }
        for (b, tokens) in zip(buckets, levels) {
            try db.query("INSERT INTO rate_buckets (key, tokens, updated) VALUES (?, ?, ?) " +
                         "ON CONFLICT(key) DO UPDATE SET tokens = excluded.tokens, updated = excluded.updated",
                         [.text(b.key), .double(tokens - 1), .double(now)])
        }
        return nil
    }
}
