import CFastCGI
import Foundation
import XCTest
@testable import FastCGIFront

/// Whether a body refill would wait on the peer (FastCGIServer.inputIsThere): read from libfcgi's
/// own reader through the CFastCGI shim's mirror of its private state, then from the socket.
/// Real libfcgi, real records over a unix socket.
final class RefillWaitTests: XCTestCase {
    private static func record(_ type: UInt8, _ content: [UInt8], padding: UInt8 = 0, id: UInt8 = 1) -> [UInt8] {
        [1, type, 0, id, UInt8(content.count >> 8), UInt8(content.count & 0xff), padding, 0] + content
            + [UInt8](repeating: 0, count: Int(padding))
    }

    /// A request accepted by libfcgi whose params are complete, then `rest` sent after them.
    private func accepted(then rest: [UInt8], _ body: (inout FCGX_Request, Int32) throws -> Void) throws {
        XCTAssertEqual(FCGX_Init(), 0)
        let path = NSTemporaryDirectory() + "refill-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
        defer { unlink(path) }
        let listener = FCGX_OpenSocket(path, 4)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        _ = withUnsafeMutableBytes(of: &addr.sun_path) { p in path.utf8CString.withUnsafeBytes { p.copyMemory(from: $0) } }
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(connected, 0)
        let pair: [UInt8] = [1, 1] + Array("A".utf8) + Array("b".utf8)
        let sent = Self.record(UInt8(FCGI_BEGIN_REQUEST), [0, 1, 0, 0, 0, 0, 0, 0])
            + Self.record(UInt8(FCGI_PARAMS), pair) + Self.record(UInt8(FCGI_PARAMS), []) + rest
        XCTAssertEqual(sent.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }, sent.count)
        var request = FCGX_Request()
        XCTAssertEqual(FCGX_InitRequest(&request, listener, 0), 0)
        defer { FCGX_Free(&request, 1) }
        XCTAssertGreaterThanOrEqual(FCGX_Accept_r(&request), 0)
        try body(&request, client)
    }

    private func read(_ n: Int, _ request: inout FCGX_Request) -> Int {
        var bytes = [CChar](repeating: 0, count: n)
        return Int(FCGX_GetStr(&bytes, Int32(n), request.in))
    }

    func testABodyAlreadyReadWithTheParamsIsThereAndItsMissingRestIsNot() throws {
        // A stdin record announcing 10 bytes of which 3 came with the params (as libfcgi reads them in one go).
        let header = Self.record(UInt8(FCGI_STDIN), Array("0123456789".utf8))
        try accepted(then: Array(header.prefix(8 + 3))) { request, client in
            XCTAssertGreaterThan(mcp_fcgx_reader_buffered(request.in), 0, "the mirrored layout fits libfcgi's reader")
            XCTAssertTrue(FastCGIServer.inputIsThere(request.in, connection: request.ipcFd),
                          "the socket is empty, but libfcgi holds the record's header and content")
            XCTAssertEqual(read(3, &request), 3)
            XCTAssertFalse(FastCGIServer.inputIsThere(request.in, connection: request.ipcFd), "the other 7 bytes are not sent yet")
            let more = Array(header.suffix(7))
            XCTAssertEqual(more.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }, 7)
            XCTAssertTrue(FastCGIServer.inputIsThere(request.in, connection: request.ipcFd), "now they are in the socket")
        }
    }

    func testAHeaderWithoutItsContentWouldWait() throws {
        // Padding of the record before, then a stdin header whose content has not come.
        let padded = Self.record(UInt8(FCGI_STDIN), Array("ab".utf8), padding: 6)
        let next = Array(Self.record(UInt8(FCGI_STDIN), Array("cd".utf8)).prefix(8))
        try accepted(then: padded + next) { request, _ in
            XCTAssertTrue(FastCGIServer.inputIsThere(request.in, connection: request.ipcFd))
            XCTAssertEqual(read(2, &request), 2)
            XCTAssertFalse(FastCGIServer.inputIsThere(request.in, connection: request.ipcFd),
                           "padding and a header are buffered, but the header's content is not")
        }
    }

    func testTheEndOfInputRecordIsThere() throws {
        try accepted(then: Self.record(UInt8(FCGI_STDIN), Array("ab".utf8), padding: 6) + Self.record(UInt8(FCGI_STDIN), [])) { request, _ in
            XCTAssertEqual(read(2, &request), 2)
            XCTAssertTrue(FastCGIServer.inputIsThere(request.in, connection: request.ipcFd), "an empty record needs no content")
        }
    }

    /// A buffered header of another request or a management record makes libfcgi skip or answer
    /// it and read on: such a refill may wait, so it gets a timeout and lends the permit.
    func testARecordThatIsNotThisStreamsOwnMayStillRead() throws {
        let first = Self.record(UInt8(FCGI_STDIN), Array("ab".utf8))
        let others: [(String, [UInt8])] = [
            ("another request's stdin", Self.record(UInt8(FCGI_STDIN), Array("cd".utf8), id: 2)),
            ("a management record", Self.record(UInt8(FCGI_GET_VALUES), [], id: 0)),
            ("this request's params", Self.record(UInt8(FCGI_PARAMS), Array("cd".utf8))),
        ]
        for (what, other) in others {
            try accepted(then: first + other) { request, _ in
                XCTAssertEqual(read(2, &request), 2)
                XCTAssertGreaterThan(mcp_fcgx_reader_buffered(request.in), 0, what)
                XCTAssertFalse(FastCGIServer.refillNeedsNoRead(request.in), what)
            }
        }
        // This request's own stdin record, for contrast.
        try accepted(then: first + Self.record(UInt8(FCGI_STDIN), Array("cd".utf8))) { request, _ in
            XCTAssertEqual(read(2, &request), 2)
            XCTAssertTrue(FastCGIServer.refillNeedsNoRead(request.in))
        }
    }
}
