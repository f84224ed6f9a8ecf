import CSQLite
import GatewaySupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a connection does while another one holds the lock it needs. SQLite's own busy timeout
/// sleeps on a fixed schedule (1, 2, 5, 10, 15, 20, 25, 50, then 100 ms at a time): under
/// mod_fcgid, where every process of the site writes the same file, a writer that holds the
/// lock for a fraction of a millisecond made the others sleep up to 100 ms. This one waits
/// in short steps, doubling from `firstStep` to `longestStep`, and gives up after the same
/// overall timeout, so a store that stays locked still ends in SQLITE_BUSY and its error.
final class SQLiteBusyWait {
    let timeoutNanoseconds: UInt64
    static let firstStepNanoseconds: UInt64 = 20_000
    static let longestStepNanoseconds: UInt64 = 500_000
    /// When the current wait began (SQLite numbers the calls of one wait from 0).
    private var startedAt: UInt64 = 0

    init(timeoutMilliseconds: Int32) {
        timeoutNanoseconds = UInt64(max(0, timeoutMilliseconds)) * 1_000_000
    }

    /// The sleep before retry number `attempt` of one wait.
    static func step(attempt: Int32) -> UInt64 {
        let doublings = UInt64(min(max(0, attempt), 16))
        return min(firstStepNanoseconds << doublings, longestStepNanoseconds)
    }

    /// Sleeps one step and says to retry, or says to give up once the timeout has passed.
    func retry(attempt: Int32) -> Bool {
        let now = monotonicNanoseconds()
        if attempt == 0 { startedAt = now }
        let waited = now &- startedAt
        guard waited < timeoutNanoseconds else { return false }
        let sleep = min(Self.step(attempt: attempt), timeoutNanoseconds - waited)
        whileBlocked { sleepNanoseconds(sleep) }  // another process holds the database
        return true
    }

    /// Installs this wait on `db`; `self` must outlive the connection (its owner keeps it).
    func install(on db: OpaquePointer?) {
        sqlite3_busy_handler(db, { context, attempt in
            guard let context else { return 0 }
            return Unmanaged<SQLiteBusyWait>.fromOpaque(context).takeUnretainedValue().retry(attempt: attempt) ? 1 : 0
        }, Unmanaged.passUnretained(self).toOpaque())
    }
}
