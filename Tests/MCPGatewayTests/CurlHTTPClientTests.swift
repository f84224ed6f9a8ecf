import Foundation
import MCPGatewayTesting
import XCTest
@testable import MCPGateway
import UpstreamHTTP

final class CurlHTTPClientTests: XCTestCase {
    private func client(_ configure: (inout CurlHTTPClientOptions) -> Void = { _ in }) -> CurlHTTPClient {
        var o = CurlHTTPClientOptions()
        o.allowInsecureHTTPForTesting = true
        o.maxRetryWaitSeconds = 2
        configure(&o)
        return CurlHTTPClient(options: o)
    }

    func testPlainHTTPNeedsTheTestingOptIn() throws {
        let strict = CurlHTTPClient(options: CurlHTTPClientOptions())
        XCTAssertThrowsError(try strict.send(UpstreamRequest(url: "http://127.0.0.1:1/x?secret=s3cr3t"))) { e in
            guard case UpstreamError.invalidURL(let shown) = e else { return XCTFail("\(e)") }
            XCTAssertFalse(shown.contains("s3cr3t"), "query strings must not reach messages")
        }
        XCTAssertThrowsError(try strict.send(UpstreamRequest(url: "ftp://example.com/")))
    }

    func testPostSendsBodyAndHeadersAndReusesTheConnection() throws {
        let server = try ScriptedHTTPServer { r in .init(body: "{\"got\":\(r.body.count)}") }
        defer { server.stop() }
        let c = client()
        for i in 0..<5 {
            let body = Array(String(repeating: "x", count: 2000 + i).utf8)
            let r = try c.send(UpstreamRequest(method: "POST", url: server.baseURL + "/q", headers: [("X-Test", "v")], body: body))
            XCTAssertEqual(r.status, 200)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "{\"got\":\(2000 + i)}")
            XCTAssertEqual(r.header("Content-Type"), "application/json")
        }
        XCTAssertEqual(server.lastRequest?.method, "POST")
        XCTAssertEqual(server.lastRequest?.headers["x-test"], "v")
        XCTAssertNil(server.lastRequest?.headers["expect"])
        XCTAssertNotNil(server.lastRequest?.headers["accept-encoding"])
        XCTAssertEqual(server.connectionCount, 1, "one kept-alive connection for sequential requests")
    }

    func testHeaderWithLineBreakIsRefused() throws {
        let server = try ScriptedHTTPServer { _ in .init() }
        defer { server.stop() }
        XCTAssertThrowsError(try client().send(UpstreamRequest(url: server.baseURL + "/", headers: [("X", "a\r\nEvil: 1")])))
        XCTAssertEqual(server.requestCount, 0)
    }

    func testIdempotentRequestRetriesOn503And429WithRetryAfter() throws {
        let counter = Counter()
        let server = try ScriptedHTTPServer { _ in
            switch counter.next() {
            case 1: return .init(status: 503)
            case 2: return .init(status: 429, headers: [("Retry-After", "1")])
            default: return .init(body: "ok")
            }
        }
        defer { server.stop() }
        let started = Date()
        let r = try client().send(UpstreamRequest(url: server.baseURL + "/g"))
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(server.requestCount, 3)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 1.0, "Retry-After honoured")
    }

    func testNonIdempotentRequestIsNotRetried() throws {
        let server = try ScriptedHTTPServer { _ in .init(status: 503) }
        defer { server.stop() }
        let r = try client().send(UpstreamRequest(method: "POST", url: server.baseURL + "/p", body: [1]))
        XCTAssertEqual(r.status, 503)
        XCTAssertEqual(server.requestCount, 1)
    }

    func testRetryAfterBeyondTheLimitIsHandedBack() throws {
        let server = try ScriptedHTTPServer { _ in .init(status: 429, headers: [("Retry-After", "30")]) }
        defer { server.stop() }
        let started = Date()
        let r = try client().send(UpstreamRequest(url: server.baseURL + "/g"))
        XCTAssertEqual(r.status, 429)
        XCTAssertEqual(r.retryAfterSeconds, 30)
        XCTAssertEqual(server.requestCount, 1)
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
    }

    func testRetryAfterMayBeAnHTTPDate() {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        let inAMinute = f.string(from: Date().addingTimeInterval(60))
        let seconds = UpstreamResponse(status: 503, headers: [("retry-after", inAMinute)]).retryAfterSeconds
        XCTAssertTrue((58...61).contains(seconds ?? -1), "\(String(describing: seconds))")
        XCTAssertEqual(UpstreamResponse(status: 503, headers: [("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")]).retryAfterSeconds, 0)
        XCTAssertNil(UpstreamResponse(status: 503, headers: [("retry-after", "soon")]).retryAfterSeconds)
        // The same parser reads cookie dates, old dashed forms included.
        XCTAssertEqual(HTTPDate.parse("Wed, 21 Oct 2037 07:28:00 GMT"), 2_139_722_880)
        XCTAssertEqual(HTTPDate.parse("Wed, 21-Oct-2037 07:28:00 GMT"), 2_139_722_880)
    }

    func testTimeoutIsBoundedByTheBudget() throws {
        let server = try ScriptedHTTPServer { _ in .init(delay: 3) }
        defer { server.stop() }
        let started = Date()
        XCTAssertThrowsError(try client { $0.totalTimeoutSeconds = 0.5 }.send(UpstreamRequest(url: server.baseURL + "/slow"))) { e in
            guard case UpstreamError.timeout = e else { return XCTFail("\(e)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5)
    }

    func testConnectFailureIsReportedAndRetried() throws {
        // A port nobody listens on: bind, learn the port, close.
        let probe = try ScriptedHTTPServer { _ in .init() }
        let url = probe.baseURL + "/x"
        probe.stop()
        XCTAssertThrowsError(try client().send(UpstreamRequest(url: url))) { e in
            guard case UpstreamError.connect(let host, _) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(host.hasPrefix("127.0.0.1:"))
        }
    }

    func testResponseSizeCap() throws {
        let server = try ScriptedHTTPServer { _ in .init(body: String(repeating: "y", count: 5000)) }
        defer { server.stop() }
        XCTAssertThrowsError(try client { $0.maxResponseBytes = 1000 }.send(UpstreamRequest(url: server.baseURL + "/big"))) { e in
            guard case UpstreamError.responseTooLarge(_, 1000) = e else { return XCTFail("\(e)") }
        }
    }

    func testNonTLSPeerFailsTheHandshake() throws {
        // A peer that answers the TLS hello with plain text: the handshake fails, nothing is accepted unverified.
        let server = try ScriptedHTTPServer { _ in .init() }
        server.greeting = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
        defer { server.stop() }
        XCTAssertThrowsError(try client().send(UpstreamRequest(url: "https://127.0.0.1:\(server.port)/"))) { e in
            guard case UpstreamError.tls = e else { return XCTFail("\(e)") }
        }
    }

    /// A real TLS server (`openssl s_server`) with a self-signed certificate: refused as
    /// untrusted by default, accepted once that certificate is the configured CA bundle.
    func testUntrustedCertificateIsRefusedAndACABundleTrustsIt() throws {
        let dir = NSTemporaryDirectory() + "tls-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func run(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let gen = try run(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                           "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"])
        gen.waitUntilExit()
        XCTAssertEqual(gen.terminationStatus, 0, "openssl (scripts/deps installs it) made a certificate")
        // A free port: bind to 0, read it, release it for s_server.
        let probe = try ScriptedHTTPServer { _ in .init() }
        let port = probe.port
        probe.stop()
        let server = try run(["s_server", "-accept", "127.0.0.1:\(port)", "-cert", dir + "/cert.pem", "-key", dir + "/key.pem",
                              "-www", "-quiet"])
        defer { server.terminate(); server.waitUntilExit() }
        let url = "https://127.0.0.1:\(port)/"
        var answered: UpstreamResponse?
        for _ in 0..<100 where answered == nil {  // until s_server listens
            do {
                _ = try client().send(UpstreamRequest(url: url))
                XCTFail("an untrusted certificate was accepted")
                return
            } catch UpstreamError.tls {
                answered = try client { $0.caBundlePath = dir + "/cert.pem" }.send(UpstreamRequest(url: url))
            } catch UpstreamError.connect {
                usleep(50_000)
            }
        }
        XCTAssertEqual(answered?.status, 200)
    }

    func testParallelRequestsFromManyThreads() throws {
        let server = try ScriptedHTTPServer { r in .init(body: r.path) }
        defer { server.stop() }
        let c = client()
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 40) { i in
            let r = try? c.send(UpstreamRequest(url: server.baseURL + "/n\(i)"))
            if r.map({ String(decoding: $0.body, as: UTF8.self) }) != "/n\(i)" { _ = failures.next() }
        }
        XCTAssertEqual(failures.value, 0)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}
