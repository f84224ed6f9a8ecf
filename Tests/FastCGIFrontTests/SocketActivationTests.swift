import Foundation
import XCTest
@testable import FastCGIFront

/// systemd socket activation: LISTEN_PID / LISTEN_FDS and the socket on fd 3.
final class SocketActivationTests: XCTestCase {
    /// Runs `body` with `fd` placed on fd 3, then puts back whatever fd 3 was.
    func withFD3(_ fd: Int32, _ body: () throws -> Void) rethrows {
        let saved = dup(3)
        dup2(fd, 3)
        defer {
            if saved >= 0 { dup2(saved, 3); close(saved) } else { close(3) }
        }
        try body()
    }

    func listeningSocket() -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let path = NSTemporaryDirectory() + "sa-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
        _ = withUnsafeMutableBytes(of: &addr.sun_path) { p in path.utf8CString.withUnsafeBytes { p.copyMemory(from: $0) } }
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        unlink(path)
        return fd
    }

    func testOnlyForThisProcess() throws {
        XCTAssertNil(try ListenAddress.systemdActivated(environment: [:]))
        XCTAssertNil(try ListenAddress.systemdActivated(environment: ["LISTEN_PID": "1", "LISTEN_FDS": "1"], pid: 2))
    }

    func testNoSocketPassedIsAnError() {
        XCTAssertThrowsError(try ListenAddress.systemdActivated(environment: ["LISTEN_PID": "7", "LISTEN_FDS": "0"], pid: 7)) {
            XCTAssertTrue("\($0)".contains("systemd passed no socket"), "\($0)")
        }
    }

    func testAListeningSocketOnFD3IsServed() throws {
        let fd = listeningSocket()
        defer { close(fd) }
        XCTAssertEqual(listen(fd, 8), 0)
        try withFD3(fd) {
            XCTAssertEqual(try ListenAddress.systemdActivated(environment: ["LISTEN_PID": "42", "LISTEN_FDS": "1"], pid: 42),
                           .activated(fd: 3))
        }
    }

    func testASocketThatDoesNotListenIsRefused() throws {
        let fd = listeningSocket()  // bound, but listen() never called
        defer { close(fd) }
        try withFD3(fd) {
            XCTAssertThrowsError(try ListenAddress.systemdActivated(environment: ["LISTEN_PID": "42", "LISTEN_FDS": "1"], pid: 42)) {
                XCTAssertTrue("\($0)".contains("not a listening stream socket"), "\($0)")
            }
        }
    }
}
