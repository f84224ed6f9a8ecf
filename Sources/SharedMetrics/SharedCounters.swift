import CSharedCounters
import GatewaySupport
import FoundationEssentials
import Glibc

/// Named counters in a file every process of the site maps (see `shared_counters.c`).
/// The numbers live in the file; this process only remembers where each name's slot is.
public final class SharedCounters: @unchecked Sendable {
    private let table: OpaquePointer
    private let lock = Lock()
    private var slots: [String: Int64] = [:]
    public let path: String

    public init(path: String, capacity: UInt32 = 4096) throws {
        guard let t = sc_open(path, capacity) else {
            throw ServerError("cannot map the metrics file \(path): \(String(cString: strerror(errno)))")
        }
        table = t
        self.path = path
    }

    deinit { sc_close(table) }

    private func slot(_ key: String) -> Int64 {
        if let s = lock.withLock({ slots[key] }) { return s }
        var key = key
        let s = key.withUTF8 { p in p.withMemoryRebound(to: CChar.self) { sc_slot(table, $0.baseAddress, $0.count) } }
        // A full table drops new series rather than failing requests.
        if s >= 0 { lock.withLock { slots[key] = s } }
        return s
    }

    public func add(_ key: String, _ delta: UInt64 = 1) {
        let s = slot(key)
        if s >= 0 { sc_add(table, s, delta) }
    }

    public func raise(_ key: String, to value: UInt64) {
        let s = slot(key)
        if s >= 0 { sc_max(table, s, value) }
    }

    /// Every series any process has counted, by name.
    public func snapshot() -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        var buffer = [CChar](repeating: 0, count: 256)
        for i in 0..<sc_capacity(table) {
            var value: UInt64 = 0
            if sc_read(table, i, &buffer, buffer.count, &value) == 1 {
                out[String(cString: buffer)] = value
            }
        }
        return out
    }

    public func registerProcess() { _ = sc_register_pid(table, getpid()) }
    public func unregisterProcess() { sc_unregister_pid(table, getpid()) }
    public var liveProcesses: Int { Int(sc_live_pids(table)) }

    public func pushError(_ text: String, at time: Double) {
        var text = text
        text.withUTF8 { p in p.withMemoryRebound(to: CChar.self) { sc_push_error(table, UInt64(time), $0.baseAddress, $0.count) } }
    }

    /// Newest first.
    public func recentErrors() -> [(time: Double, text: String)] {
        var out: [(Double, String)] = []
        var buffer = [CChar](repeating: 0, count: 256)
        for n in 0..<UInt32(SC_ERROR_SLOTS) {
            var time: UInt64 = 0
            if sc_read_error(table, n, &time, &buffer, buffer.count) == 1 { out.append((Double(time), String(cString: buffer))) }
        }
        return out
    }
}
