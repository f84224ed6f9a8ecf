#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatewaySupport

// `Lock` is GatewaySupport's; what follows is EntraAuth's bounded wait for it and for file locks.

/// Wall-clock seconds since the epoch; the default clock for verification.
public func systemClockSeconds() -> Int64 { Int64(time(nil)) }

/// How long to wait for a lock another thread or process holds.
enum LockWait {
    case indefinitely
    /// Only if it is free right now.
    case never
    /// Until this CLOCK_MONOTONIC time (nanoseconds); see `forAtMost`.
    case until(deadline: UInt64)

    /// A bound that starts now, shared by every lock it is used for.
    static func forAtMost(milliseconds: Int) -> LockWait { .until(deadline: monotonicNanoseconds() + UInt64(max(0, milliseconds)) * 1_000_000) }

    /// Whether `attempt` succeeded within the wait (tried every 2 ms; `.indefinitely` is not polled).
    func poll(_ attempt: () -> Bool) -> Bool {
        if attempt() { return true }
        guard case .until(let deadline) = self else { return false }
        while LockWait.monotonicNanoseconds() < deadline {
            usleep(2000)
            if attempt() { return true }
        }
        return false
    }

    static func monotonicNanoseconds() -> UInt64 { GatewaySupport.monotonicNanoseconds() }
}

extension Lock {
    /// Runs `body` once the lock is taken within `wait`; nil when it was not.
    func withLock<T>(_ wait: LockWait, _ body: () throws -> T) rethrows -> T? {
        // The holder may be fetching with its run permit lent: wait without one (whileBlocked).
        if case .indefinitely = wait { return try withLockWhileBlocked(body) }
        guard tryLock() || whileBlocked({ wait.poll(tryLock) }) else { return nil }
        defer { unlock() }
        return try body()
    }
}
