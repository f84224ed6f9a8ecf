import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 for the upstream client tests: keep-alive,
/// one thread per connection, and a handler that decides each answer.
final class ScriptedHTTPServer: @unchecked Sendable {
    struct Request {
        let method: String
        let path: String
        let headers: [String: String]
        let body: [UInt8]
    }

    struct Reply {
        var status = 200
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        var body: [UInt8] = []
        /// Seconds to sleep before answering (timeouts).
        var delay: Double = 0
        /// Close the connection without answering (transport errors).
        var hangUp = false

        init(status: Int = 200, headers: [(String, String)] = [("Content-Type", "application/json")], body: String = "",
             delay: Double = 0, hangUp: Bool = false) {
            self.status = status
            self.headers = headers
            self.body = Array(body.utf8)
            self.delay = delay
            self.hangUp = hangUp
        }
    }

    private let lock = NSLock()
    private var handler: @Sendable (Request) -> Reply
    private(set) var requests: [Request] = []
    private(set) var connections = 0
    private let listener: Int32
    private(set) var port: UInt16 = 0
    /// Bytes written as soon as a connection is accepted, which then closes (not-HTTP peers).
    var greeting: [UInt8]?

    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(_ handler: @escaping @Sendable (Request) -> Reply) throws {
        self.handler = handler
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EIO) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { close(listener); throw POSIXError(.EADDRINUSE) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) }
        }
        port = UInt16(bigEndian: addr.sin_port)
        Thread { [self] in self.acceptLoop() }.start()
    }

    func setHandler(_ h: @escaping @Sendable (Request) -> Reply) { lock.lock(); handler = h; lock.unlock() }
    var requestCount: Int { lock.lock(); defer { lock.unlock() }; return requests.count }
    var connectionCount: Int { lock.lock(); defer { lock.unlock() }; return connections }
    var lastRequest: Request? { lock.lock(); defer { lock.unlock() }; return requests.last }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            lock.lock(); connections += 1; let g = greeting; lock.unlock()
            if let g {
                _ = g.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                close(fd)
                continue
            }
            Thread { [self] in self.serve(fd); close(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            // Headers, then Content-Length bytes of body.
            var headerEnd: Int?
            while headerEnd == nil {
                if let i = Self.find([13, 10, 13, 10], in: buffer) { headerEnd = i; break }
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let head = String(decoding: buffer[..<headerEnd!], as: UTF8.self).components(separatedBy: "\r\n")
            let parts = head[0].split(separator: " ")
            var headers: [String: String] = [:]
            for line in head.dropFirst() {
                guard let c = line.firstIndex(of: ":") else { continue }
                headers[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            let bodyStart = headerEnd! + 4
            while buffer.count < bodyStart + length {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { return }
                buffer += chunk[0..<n]
            }
            let request = Request(method: parts.count > 0 ? String(parts[0]) : "", path: parts.count > 1 ? String(parts[1]) : "/",
                                  headers: headers, body: Array(buffer[bodyStart..<(bodyStart + length)]))
            buffer.removeFirst(bodyStart + length)
            lock.lock()
            requests.append(request)
            let h = handler
            lock.unlock()
            let reply = h(request)
            if reply.delay > 0 { usleep(useconds_t(reply.delay * 1_000_000)) }
            if reply.hangUp { return }
            var out = "HTTP/1.1 \(reply.status) X\r\n"
            for (k, v) in reply.headers { out += "\(k): \(v)\r\n" }
            out += "Content-Length: \(reply.body.count)\r\n\r\n"
            var bytes = Array(out.utf8)
            if request.method != "HEAD" { bytes += reply.body }
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                sent += n
            }
        }
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}
