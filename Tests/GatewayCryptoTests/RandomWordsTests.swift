import XCTest
@testable import GatewayCrypto

final class RandomWordsTests: XCTestCase {
    func testEveryWordIsHandedOutOnceAcrossThreads() {
        let lock = NSLock()
        var seen: [UInt64] = []
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            var mine: [UInt64] = []
            for _ in 0..<1_000 { mine.append(RandomWords.shared.next()) }
            lock.withLock { seen += mine }
        }
        XCTAssertEqual(seen.count, 8_000)
        XCTAssertEqual(Set(seen).count, 8_000, "a word was handed out twice")
        // Not a constant or a counter: the bits vary in every position.
        XCTAssertEqual(seen.reduce(0, |), UInt64.max)
        XCTAssertEqual(seen.reduce(UInt64.max, &), 0)
    }
}
