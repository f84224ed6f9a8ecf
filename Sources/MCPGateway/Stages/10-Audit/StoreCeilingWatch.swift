import FoundationEssentials
import GatewayStore
import GatewaySupport

/// The audit stage's eye on the store's size: measured at most every `interval` seconds per
/// process (two `stat` calls), a warning at most once a minute while above the ceiling, and
/// the audit trail pruned once per measurement that finds it above.
public final class StoreCeilingWatch: @unchecked Sendable {
    let store: StoreHealthCheck
    public let ceiling: StoreCeiling
    let interval: Double
    private let lock = Lock()
    private var measuredAt = -Double.infinity
    private var warnedAt = -Double.infinity

    public init(store: StoreHealthCheck, ceiling: StoreCeiling, interval: Double = 10) {
        self.store = store
        self.ceiling = ceiling
        self.interval = interval
    }

    /// True when this call measured the store and found it above its ceiling: time to prune.
    public func foundOverCeiling(now: Double) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard now - measuredAt >= interval else { return false }
        measuredAt = now
        guard let health = try? store.health(), let alarm = ceiling.alarm(health) else { return false }
        if now - warnedAt >= 60 {
            warnedAt = now
            Log.shared.warning("store above its size ceiling; pruning the audit trail", ["alarm": .string(alarm)])
        }
        return true
    }
}
