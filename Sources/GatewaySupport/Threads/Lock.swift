#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex on the heap (a Swift class's stored `pthread_mutex_t` may move), for the
/// worker threads that share state. Critical sections stay short: no I/O while it is held
/// unless the lock exists to serialize that I/O.
package final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    @inline(__always) package func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) package func unlock() { pthread_mutex_unlock(mutex) }
    package func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }

    @inline(__always)
    package func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A mutex with a condition variable whose timed waits run on CLOCK_MONOTONIC, so a change of
/// the wall clock neither cuts a wait short nor stretches it.
package final class Condition: @unchecked Sendable {
    /// A point on CLOCK_MONOTONIC for `wait(until:)`.
    package struct Deadline: Sendable {
        package let nanoseconds: UInt64
        package init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

        /// `seconds` from now (negative counts as zero).
        package static func after(seconds: Double) -> Deadline {
            let delta = seconds > 0 ? UInt64(min(seconds, 1e9) * 1e9) : 0
            return Deadline(nanoseconds: monotonicNanoseconds() + delta)
        }
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        cond.initialize(to: pthread_cond_t())
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        #if canImport(Glibc)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        cond.deinitialize(count: 1)
        cond.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    package func lock() { pthread_mutex_lock(mutex) }
    package func unlock() { pthread_mutex_unlock(mutex) }
    package func signal() { pthread_cond_signal(cond) }
    package func broadcast() { pthread_cond_broadcast(cond) }

    /// Waits (the lock held) until signalled; may wake spuriously, as with any condition variable.
    package func wait() { pthread_cond_wait(cond, mutex) }

    /// Waits (the lock held) until signalled or `deadline` passes: false when it passed.
    /// Like NSCondition's, a true answer may be a spurious wake-up; callers re-check their state.
    package func wait(until deadline: Deadline) -> Bool {
        if monotonicNanoseconds() >= deadline.nanoseconds { return false }
        var ts = timespec(tv_sec: Int(deadline.nanoseconds / 1_000_000_000), tv_nsec: Int(deadline.nanoseconds % 1_000_000_000))
        return pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
package func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
}

/// Sleeps the calling thread for `nanoseconds`, resuming after a signal interrupts the sleep.
package func sleepNanoseconds(_ nanoseconds: UInt64) {
    guard nanoseconds > 0 else { return }
    var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// Starts a detached thread running `body`, named `name` (Linux keeps 15 bytes of it) for
/// `top -H`, gdb and /proc/PID/task/*/comm. Returns the pthread_create error, 0 when started.
@discardableResult
package func startDetachedThread(name: String, _ body: @escaping @Sendable () -> Void) -> Int32 {
    final class Box { let name: String; let body: @Sendable () -> Void; init(_ n: String, _ b: @escaping @Sendable () -> Void) { name = n; body = b } }
    let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
    var attr = pthread_attr_t()
    pthread_attr_init(&attr)
    pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
    defer { pthread_attr_destroy(&attr) }
    var thread = pthread_t()
    let rc = pthread_create(&thread, &attr, { raw in
        let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
        #if os(Linux)
        // pthread_setname_np is not in Glibc's Swift module (it wants _GNU_SOURCE); it writes here.
        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            let name = Array(box.name.utf8.prefix(15))
            _ = name.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        #endif
        box.body()
        return nil
    }, box)
    if rc != 0 { Unmanaged<Box>.fromOpaque(box).release() }
    return rc
}
