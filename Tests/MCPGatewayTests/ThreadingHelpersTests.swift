import GatewaySupport
import Foundation
import XCTest

final class ThreadingHelpersTests: XCTestCase {
    func testLockSerializesThreads() {
        let lock = Lock()
        var count = 0
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { lock.withLock { count += 1 } }
        }
        XCTAssertEqual(count, 80_000)
        XCTAssertTrue(lock.tryLock())
        lock.unlock()
    }

    func testConditionTimesOutOnTheMonotonicClock() {
        let c = Condition()
        c.lock()
        let start = monotonicNanoseconds()
        let deadline = Condition.Deadline.after(seconds: 0.05)
        while c.wait(until: deadline) {}  // nobody signals: only the deadline ends it
        let waited = Double(monotonicNanoseconds() - start) / 1e9
        c.unlock()
        XCTAssertGreaterThanOrEqual(waited, 0.05)
        XCTAssertLessThan(waited, 2)
        c.lock()
        XCTAssertFalse(c.wait(until: .after(seconds: -1)), "a past deadline does not wait")
        c.unlock()
    }

    func testConditionWakesAWaiterAndTheThreadIsNamed() {
        let c = Condition()
        var ready = false
        var name = ""
        let rc = startDetachedThread(name: "audit-drain-and-more") {
            let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            c.lock()
            name = comm.trimmingASCIIWhitespaceAndNewlines()
            ready = true
            c.signal()
            c.unlock()
        }
        XCTAssertEqual(rc, 0)
        c.lock()
        let deadline = Condition.Deadline.after(seconds: 10)
        while !ready && c.wait(until: deadline) {}
        c.unlock()
        XCTAssertTrue(ready)
        XCTAssertEqual(name, "audit-drain-and")  // Linux keeps 15 bytes
    }

    func testASCIITrimmingAndCase() {
        XCTAssertEqual(" \tA b\t ".trimmingASCIISpaces(), "A b")
        XCTAssertEqual("\u{A0}x\u{A0}".trimmingASCIISpaces(), "\u{A0}x\u{A0}", "Unicode spaces stay")
        XCTAssertEqual("   ".trimmingASCIISpaces(), "")
        XCTAssertEqual("\r\n secret\n\u{0B}\u{0C}".trimmingASCIIWhitespaceAndNewlines(), "secret")
        XCTAssertEqual("\n\n".trimmingASCIIWhitespaceAndNewlines(), "")
        XCTAssertEqual("\"120\"".trimming("\""), "120")
        XCTAssertEqual("\"\"".trimming("\""), "")
        XCTAssertTrue("Content-Type".equalsIgnoringASCIICase("content-type"))
        XCTAssertFalse("Content-Type".equalsIgnoringASCIICase("content-typ"))
        XCTAssertFalse("@".equalsIgnoringASCIICase("`"), "only letters fold")
        XCTAssertFalse("\u{C9}".equalsIgnoringASCIICase("\u{E9}"))
        XCTAssertEqual("a%2Eb%2e%2".replacingIgnoringASCIICase("%2e", with: "."), "a.b.%2")
        XCTAssertEqual("%2n".replacingIgnoringASCIICase("%2e", with: "."), "%2n", "'n' is not 'N' folded to 'e'")
    }
}

/// Foundation (not FoundationEssentials) in any production target links swift-corelibs-foundation,
/// CoreFoundation and ICU's data back into the executable (ARCHITECTURE.md, "Targets").
final class FoundationImportTests: XCTestCase {
    func testNoProductionTargetImportsFoundation() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources").standardizedFileURL
        let files = try XCTUnwrap(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".swift") && !$0.hasPrefix("MCPGatewayTesting/") }
        XCTAssertGreaterThan(files.count, 50)
        for file in files {
            let text = try String(contentsOfFile: sources.appendingPathComponent(file).path, encoding: .utf8)
            for line in text.split(separator: "\n") where line.trimmingASCIISpaces().hasPrefix("import Foundation") {
                XCTAssertEqual(line.trimmingASCIISpaces(), "import FoundationEssentials", "\(file): \(line)")
            }
        }
    }
}
