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

    func testHTTPDateForms() {
        let now = 1_796_083_200.0  // 2026-12-01
        // IMF-fixdate, the dashed cookie form, RFC 850, asctime (one- and two-digit days).
        XCTAssertEqual(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: now), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sun, 06-Nov-1994 08:49:37 GMT", now: now), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT", now: now), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Sun Nov  6 08:49:37 1994", now: now), 784_111_777)
        XCTAssertEqual(HTTPDate.parse("Thu Oct 21 07:28:00 2037", now: now), 2_139_722_880)
        // Names in any case, the weekday unchecked (as before), UTC for GMT.
        XCTAssertEqual(HTTPDate.parse("wed, 21 oct 2037 07:28:00 gmt", now: now), 2_139_722_880)
        XCTAssertEqual(HTTPDate.parse("Fri, 21 Oct 2037 07:28:00 GMT", now: now), 2_139_722_880)
        XCTAssertEqual(HTTPDate.parse("Wednesday, 21 Oct 2037 07:28:00 UTC", now: now), 2_139_722_880)
        XCTAssertEqual(HTTPDate.parse("Thu, 29 Feb 2024 00:00:00 GMT", now: now), 1_709_164_800)
        XCTAssertEqual(HTTPDate.parse("Thu, 01 Jan 1970 00:00:00 GMT", now: now), 0)
    }

    /// RFC 9110 §5.6.7: a two-digit year more than 50 years ahead is the latest past year with those digits.
    func testHTTPDateTwoDigitYears() {
        let now = 1_796_083_200.0  // 2026-12-01
        XCTAssertEqual(HTTPDate.parse("Wednesday, 21-Oct-37 07:28:00 GMT", now: now), 2_139_722_880)  // 2037
        XCTAssertEqual(HTTPDate.parse("Saturday, 01-Jan-76 00:00:00 GMT", now: now), 3_345_062_400)   // 2076: 50 years ahead
        XCTAssertEqual(HTTPDate.parse("Wednesday, 01-Jan-77 00:00:00 GMT", now: now), 220_924_800)    // 1977
        XCTAssertEqual(HTTPDate.parse("Saturday, 01-Jan-50 00:00:00 GMT", now: now), 2_524_608_000)   // 2050
        XCTAssertEqual(HTTPDate.parse("Saturday, 01-Jan-00 00:00:00 GMT", now: now), 946_684_800)     // 2000
        let in2090 = 3_786_912_000.0  // 2090-01-01
        XCTAssertEqual(HTTPDate.parse("Monday, 01-Jan-10 00:00:00 GMT", now: in2090), 4_417_977_600)  // 2110
        XCTAssertEqual(HTTPDate.parse("Monday, 01-Jan-45 00:00:00 GMT", now: in2090), 2_366_841_600)  // 2045
    }

    func testHTTPDateRefusesOtherText() {
        for text in ["", "garbage", "120", "Wed, 21 Oct 2037 07:28:00", "Wed, 21 Oct 2037 07:28:00 EST",
                     "Wed, 21 Oct 2037 07:28:00 +0000", "Wed, 21 Oct 2037 07:28:00 GMTx", "Wed, 21 Oct 2037 07:28:00 GMT ",
                     " Wed, 21 Oct 2037 07:28:00 GMT", "Wed,21 Oct 2037 07:28:00 GMT", "Wed 21 Oct 2037 07:28:00 GMT",
                     "Wed, 21 Oct 37 07:28:00 GMT", "Wed, 21 Oct 02037 07:28:00 GMT", "Wed, 1 Oct 2037 07:28:00 GMT",
                     "Wed, 21 October 2037 07:28:00 GMT", "Wed, 21 Oct 2037 7:28:00 GMT", "Wed, 21 Oct 2037 07:28 GMT",
                     "Wed, 32 Oct 2037 07:28:00 GMT", "Wed, 30 Feb 2037 07:28:00 GMT", "Wed, 21 Oct 2037 24:00:00 GMT",
                     "Wed, 21 Oct 2037 07:60:00 GMT", "Wed, 21 Oct 2037 07:28:60 GMT", "Xyz, 21 Oct 2037 07:28:00 GMT",
                     "Wed, 21 Foo 2037 07:28:00 GMT", "Wed, 21-Oct 2037 07:28:00 GMT", "Sun Nov 6 08:49:37 1994",
                     "Sun Nov  6 08:49:37 94", "Sun Nov 06 08:49:37 1994 GMT"] {
            XCTAssertNil(HTTPDate.parse(text, now: 1_796_083_200), text)
        }
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
