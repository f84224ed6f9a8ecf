#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// At most `limit` worker threads run request work at once (normally one per core); the other
/// workers wait for a permit. A worker that waits on something outside the process (an upstream
/// call, the database, a slow peer) lends its permit for that wait (`whileBlocked`), so a parked
/// worker takes over the core, as Go's scheduler does with GOMAXPROCS.
///
/// Why: under full load, more runnable threads than cores only take turns on them, and a request
/// whose thread loses its core mid-way waits a whole time slice; the slowest requests show it
/// (BENCHMARKS.md: p99 2.9 ms with one thread per core, 6 ms with two). Yet a site needs more
/// threads than cores, for the calls that wait on Power BI or a backend.
///
/// A permit is held across `accept()` (a worker waiting there costs no CPU, and queuing in the
/// kernel's accept queue costs nothing per request), so in a steady CPU-bound load the same
/// `limit` workers keep their permits and the rest stay parked: one uncontended lock per request.
/// A worker coming back from a wait never waits for a permit (its caller has waited long enough):
/// it runs over the limit, and the first permit holder to finish a request with no connection
/// kept gives its permit back and parks, so the count settles at the limit again.
package final class RunPermits: @unchecked Sendable {
    package let limit: Int
    private let condition = Condition()
    /// Workers holding a permit, the ones over the limit included.
    private var running = 0
    private var parked = 0
    private var closed = false

    package init(limit: Int) {
        precondition(limit >= 1, "a run permit limit is at least 1")
        self.limit = limit
    }

    /// Waits for a permit: false once `close()` was called (the worker should stop).
    package func take() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while running >= limit && !closed {
            parked += 1
            condition.wait()
            parked -= 1
        }
        if closed { return false }
        running += 1
        return true
    }

    /// Gives the permit back when more workers hold one than the limit; true when it did (the
    /// caller no longer holds one). Nobody is woken: the count is still at the limit.
    package func giveBackIfOverLimit() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard running > limit else { return false }
        running -= 1
        return true
    }

    /// The caller's permit, for a parked worker to take while the caller waits elsewhere.
    package func lend() {
        condition.lock()
        running -= 1
        if parked > 0 && running < limit { condition.signal() }
        condition.unlock()
    }

    /// Takes a permit back after a wait, at once, over the limit if need be.
    package func reclaim() {
        condition.lock()
        running += 1
        condition.unlock()
    }

    /// Gives the permit back for good (a worker that ends).
    package func release() { lend() }

    /// Wakes every parked worker; from now on `take()` answers false.
    package func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Workers holding a permit now, for tests and status.
    package var holders: Int { condition.lock(); defer { condition.unlock() }; return running }

    // MARK: the calling thread's permit

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "no thread-specific key left for the run permits")
        return key
    }()

    /// Marks the calling thread as holding a permit of `permits` (nil: none), so that the waits
    /// deep in the stores and the HTTP client lend it (`whileBlocked`). The worker keeps
    /// `permits` alive while it is set.
    package static func setHeldByCurrentThread(_ permits: RunPermits?) {
        pthread_setspecific(key, permits.map { UnsafeRawPointer(Unmanaged.passUnretained($0).toOpaque()) })
    }

    fileprivate static var heldByCurrentThread: RunPermits? {
        pthread_getspecific(key).map { Unmanaged<RunPermits>.fromOpaque($0).takeUnretainedValue() }
    }
}

extension Lock {
    /// Takes the lock, lending the calling worker's run permit while it waits: the holder may
    /// itself be waiting outside the process with its permit lent, and a worker that took that
    /// permit must not sit on it behind the holder. Free, it is taken at once.
    @inline(__always)
    package func lockWhileBlocked() {
        if tryLock() { return }
        whileBlocked { lock() }
    }

    /// `withLock`, waiting as `lockWhileBlocked` does.
    @inline(__always)
    package func withLockWhileBlocked<T>(_ body: () throws -> T) rethrows -> T {
        lockWhileBlocked()
        defer { unlock() }
        return try body()
    }
}

/// Runs `body`, a wait on something outside the process (an upstream, the database, a lock
/// another process holds, a slow peer), with the calling worker's run permit lent meanwhile.
/// On a thread without a permit (a command, a CGI process, the audit drain) it just runs `body`.
@inline(__always)
package func whileBlocked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
    guard let permits = RunPermits.heldByCurrentThread else { return try body() }
    // Lent until the wait ends: a wait inside this one lends nothing more.
    permits.lend()
    RunPermits.setHeldByCurrentThread(nil)
    defer {
        RunPermits.setHeldByCurrentThread(permits)
        permits.reclaim()
    }
    return try body()
}
