import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server on 127.0.0.1 for tests of HTTP clients and key fetching:
/// keep-alive, one thread per connection, every request recorded.
///
/// Answers come from a handler the test supplies, or, without one, from per-path
/// routes set with `set(_:status:body:)` (anything else is a 404).
package final class ScriptedHTTPServer: @unchecked Sendable {
    package struct Request: Sendable {
        package let method: String
        package let path: String
        /// Header names are lower-cased.
        package let headers: [String: String]
        package let body: [UInt8]
    }

    package struct Reply: Sendable {
        package var status: Int
        /// A `Connection: close` header closes the connection after the answer.
        package var headers: [(String, String)]
        package var body: [UInt8]
        /// Seconds to sleep before answering (timeouts).
        package var delay: Double
        /// Close the connection without answering (transport errors).
        package var hangUp: Bool

        package init(status: Int = 200, headers: [(String, String)] = [("Content-Type", "application/json")], body: String = "",
                     delay: Double = 0, hangUp: Bool = false) {
            self.status = status
            self.headers = headers
            self.body = Array(body.utf8)
            self.delay = delay
            self.hangUp = hangUp
        }

        /// What a route answers: JSON, one request per connection, as a simple key server does.
        static func route(status: Int, body: String) -> Reply {
            Reply(status: status, headers: [("Content-Type", "application/json"), ("Connection", "close")], body: body)
        }

        var closesConnection: Bool {
            headers.contains { $0.0.lowercased() == "connection" && $0.1.lowercased() == "close" }
        }
    }

    private let lock = NSLock()
    private let handler: (@Sendable (Request) -> Reply)?
    private var routes: [String: Reply] = [:]
    private var recorded: [Request] = []
    private var connections = 0
    private var greetingBytes: [UInt8]?
    private var stopped = false
    private let listener: Int32
    private let acceptLoopDone = DispatchSemaphore(value: 0)
    package let port: UInt16

    package var baseURL: String { "http://127.0.0.1:\(port)" }

    /// With a `handler`, it answers every request (routes are not consulted); without, the routes answer.
    package init(_ handler: (@Sendable (Request) -> Reply)? = nil) throws {
        self.handler = handler
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { close(fd); throw POSIXError(.EADDRINUSE) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listener = fd
        port = UInt16(bigEndian: addr.sin_port)
        Thread { [self] in self.acceptLoop() }.start()
    }

    // MARK: answers

    /// Answer `path` (the request target as sent, query included) with `body` as JSON, after `delay` seconds.
    package func set(_ path: String, status: Int = 200, body: String, delay: Double = 0) {
        var reply = Reply.route(status: status, body: body)
        reply.delay = delay
        lock.withLock { routes[path] = reply }
    }

    /// Bytes written as soon as a connection is accepted, which then closes (not-HTTP peers).
    package var greeting: [UInt8]? {
        get { lock.withLock { greetingBytes } }
        set { lock.withLock { greetingBytes = newValue } }
    }

    // MARK: what was asked

    package var requests: [Request] { lock.withLock { recorded } }
    package var requestCount: Int { lock.withLock { recorded.count } }
    package var lastRequest: Request? { lock.withLock { recorded.last } }
    package func hits(_ path: String) -> Int { lock.withLock { recorded.lazy.filter { $0.path == path }.count } }
    package var connectionCount: Int { lock.withLock { connections } }

    /// Stops accepting connections (idempotent); returns once the accept loop has ended.
    package func stop() {
        let alreadyStopped = lock.withLock { () -> Bool in
            let was = stopped
            stopped = true
            return was
        }
        if alreadyStopped { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        acceptLoopDone.wait()
    }

    // MARK: serving

    private func acceptLoop() {
        defer { acceptLoopDone.signal() }
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                if errno == EINTR { continue }
                return
            }
            let greeting = lock.withLock { () -> [UInt8]? in
                connections += 1
                return greetingBytes
            }
            if let greeting {
                _ = greeting.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
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
            let reply = answer(request)
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
            if reply.closesConnection { return }
        }
    }

    /// Records the request, then asks the handler (outside the lock) or looks up the route.
    private func answer(_ request: Request) -> Reply {
        let route = lock.withLock { () -> Reply? in
            recorded.append(request)
            return routes[request.path]
        }
        if let handler { return handler(request) }
        return route ?? .route(status: 404, body: "not found")
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}
