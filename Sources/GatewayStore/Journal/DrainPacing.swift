import GatewaySupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Spreads the drain thread's round over time. A round moves up to `drainAfterRecords` (8,192)
/// records at once: about 40 ms of one core, during which the web server's workers and the
/// request threads shared the other core and the requests of that stretch queued (the p99).
/// After each batch the drain now pauses as long as the batch took on the CPU, so it holds at
/// most about half a core in any stretch.
///
/// Only the first `pacedRecords` records of a round are paced: a drain that has fallen behind
/// (a backlog from other processes, a store that was busy) runs flat out until it catches up.
/// Drains outside the drain thread (at exit, by a command, a CGI process) are not paced.
final class DrainPacing {
    /// The longest pause after one batch, whatever the batch cost.
    static let longestPauseNanoseconds: UInt64 = 5_000_000

    private var pacedLeft: Int
    private let cpuNanoseconds: () -> UInt64
    private let pause: (UInt64) -> Void
    private var batchStart: UInt64 = 0

    init(pacedRecords: Int,
         cpuNanoseconds: @escaping () -> UInt64 = DrainPacing.threadCPUNanoseconds,
         pause: @escaping (UInt64) -> Void = sleepNanoseconds) {
        pacedLeft = pacedRecords
        self.cpuNanoseconds = cpuNanoseconds
        self.pause = pause
    }

    func batchBegins() { batchStart = cpuNanoseconds() }

    /// After a batch of `records` (the round's last batch pauses too: at most 5 ms before the
    /// drain thread sleeps anyway).
    func batchEnded(records: Int) {
        guard pacedLeft > 0 else { return }
        pacedLeft -= records
        let spent = cpuNanoseconds() &- batchStart
        pause(min(spent, Self.longestPauseNanoseconds))
    }

    /// CPU time of the calling thread: the batch's own work, not time it waited for a core.
    static func threadCPUNanoseconds() -> UInt64 {
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}
