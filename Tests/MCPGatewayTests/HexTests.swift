import GatewaySupport
import XCTest

final class HexTests: XCTestCase {
    func testWordsAreSixteenZeroPaddedDigits() {
        XCTAssertEqual(Hex.word(0), "0000000000000000")
        XCTAssertEqual(Hex.word(0xDEAD_BEEF), "00000000deadbeef")
        XCTAssertEqual(Hex.word(.max), "ffffffffffffffff")
        XCTAssertEqual(Hex.random(words: 4).count, 64)
        XCTAssertTrue(Hex.random(words: 2).allSatisfy { "0123456789abcdef".contains($0) })
    }

    func testBytesAreTwoDigitsEachInOrder() {
        XCTAssertEqual(Hex.encode([0x00, 0x0F, 0xA0, 0xFF]), "000fa0ff")
        XCTAssertEqual(Hex.encode([UInt8]()), "")
    }
}
