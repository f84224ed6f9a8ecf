import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny HTTP/1.1 server on 127.0.0.1 for key-fetching tests: one thread,
/// one request per connection, programmable routes, per-path hit counters.
final class FakeHTTPServer: @unchecked Sendable {
    private let lock = NSLock()
    private var routes: [String: (status: Int, body: [UInt8])] = [:]
    private var hitCounts: [String: Int] = [:]
    private let listener: Int32
    private(set) var port: UInt16 = 0
    private let done = DispatchSemaphore(value: 0)

    var baseURL: String { "http://127.0.0.1:\(port)" }

    init() throws {
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EIO) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { close(listener); throw POSIXError(.EADDRINUSE) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
        }
        port = UInt16(bigEndian: addr.sin_port)
        let thread = Thread { [self] in self.serve() }
        thread.start()
    }

    func set(_ path: String, status: Int = 200, body: String) {
        lock.lock(); routes[path] = (status, Array(body.utf8)); lock.unlock()
    }

    func remove(_ path: String) { lock.lock(); routes[path] = nil; lock.unlock() }

    func hits(_ path: String) -> Int { lock.lock(); defer { lock.unlock() }; return hitCounts[path] ?? 0 }

    var totalHits: Int { lock.lock(); defer { lock.unlock() }; return hitCounts.values.reduce(0, +) }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        done.wait()
    }

    private func serve() {
        defer { done.signal() }
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            handle(fd)
            close(fd)
        }
    }

    private func handle(_ fd: Int32) {
        var request = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while !request.containsHeaderEnd {
            let n = read(fd, &buf, buf.count)
            if n <= 0 { return }
            request += buf[0..<n]
            if request.count > 65536 { return }
        }
        let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let path = parts.count >= 2 ? String(parts[1]) : "/"
        lock.lock()
        hitCounts[path, default: 0] += 1
        let route = routes[path] ?? (404, Array("not found".utf8))
        lock.unlock()
        var response = Array("HTTP/1.1 \(route.status) X\r\nContent-Type: application/json\r\nContent-Length: \(route.body.count)\r\nConnection: close\r\n\r\n".utf8)
        response += route.body
        var sent = 0
        while sent < response.count {
            let n = response[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            sent += n
        }
    }
}

private extension Array where Element == UInt8 {
    var containsHeaderEnd: Bool {
        guard count >= 4 else { return false }
        for i in 0...(count - 4) where self[i] == 13 && self[i + 1] == 10 && self[i + 2] == 13 && self[i + 3] == 10 { return true }
        return false
    }
}

/// A fresh private directory under the system temp dir.
func makeTempDirectory() -> String {
    var template = Array((NSTemporaryDirectory() + "/entra-auth-test-XXXXXX").utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}
