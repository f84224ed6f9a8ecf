import GatewaySupport
import XCTest
@testable import FastCGIFront

final class BodyDeadlineTests: XCTestCase {
    /// A pipe standing in for a CGI program's stdin, with `bytes` written and the far end kept open.
    func stalledPipe(after bytes: [UInt8]) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        XCTAssertEqual(bytes.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }, bytes.count)
        return (fds[0], fds[1])
    }

    func testAStalledBodyEndsAtItsDeadline() {
        let (r, w) = stalledPipe(after: [UInt8](repeating: 0x7b, count: 20))
        defer { close(r); close(w) }
        let started = ContinuousClock.now
        XCTAssertThrowsError(try CGIResponder.read(fd: r, upTo: 488, by: BodyDeadline(seconds: 0.3))) { error in
            XCTAssertEqual((error as? BodyDeadlinePassed)?.received, 20)
        }
        let waited = ContinuousClock.now - started
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(290))
        XCTAssertLessThan(waited, .seconds(2))
    }

    func testABodyThatArrivesInTimeIsReadWhole() throws {
        let (r, w) = stalledPipe(after: Array("hello".utf8))
        defer { close(r) }
        close(w)
        XCTAssertEqual(try CGIResponder.read(fd: r, upTo: 5, by: BodyDeadline(seconds: 5)), Array("hello".utf8))
    }

    /// The unread rest of a refused body is read to its end, however much more than a pipe holds:
    /// the writer (the web server) finishes instead of meeting a reset.
    func testTheRestOfARefusedBodyIsDrained() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let (r, w) = (fds[0], fds[1])
        defer { close(r) }
        let total = 300_000
        let writer = Thread {
            let chunk = [UInt8](repeating: 0x20, count: 10_000)
            for _ in 0..<(total / chunk.count) { _ = chunk.withUnsafeBytes { write(w, $0.baseAddress, $0.count) } }
            close(w)
        }
        writer.start()
        XCTAssertEqual(CGIResponder.discard(fd: r, count: total, by: BodyDeadline(seconds: 5)), total)
    }

    func testDrainingStopsAtTheDeadline() {
        let (r, w) = stalledPipe(after: [UInt8](repeating: 0x20, count: 20))
        defer { close(r); close(w) }
        let started = ContinuousClock.now
        XCTAssertEqual(CGIResponder.discard(fd: r, count: 488, by: BodyDeadline(seconds: 0.3)), 0)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))
    }

    func testAPassedDeadlineIsAnsweredByTheHandlerForItsPath() {
        let a = RequestAssembler(maxBodyBytes: 1000, bodyTimedOut: { path, detail in
            HTTPResponse(status: 408, body: Array("\(path)|\(detail)".utf8))
        })
        var p = CGIParams()
        for (k, v) in [("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/mcp"), ("CONTENT_LENGTH", "488")] { p.add(name: k, value: v) }
        let r = a.assemble(p, readBody: { _ throws(BodyDeadlinePassed) in throw BodyDeadlinePassed(received: 20) })
        guard case .failure(.reject(let resp)) = r else { return XCTFail("\(r)") }
        XCTAssertEqual(resp.status, 408)
        XCTAssertEqual(String(decoding: resp.body, as: UTF8.self), "/mcp|only 20 bytes of it arrived before the deadline")
    }

    func testThePlain408IsAJSONError() {
        let r = RequestAssembler(maxBodyBytes: 1000).bodyTimedOut("/me", "late")
        XCTAssertEqual(r.status, 408)
        XCTAssertTrue(String(decoding: r.cgiHead(), as: UTF8.self).hasPrefix("Status: 408 Request Timeout\r\n"))
    }
}
