import MCPGatewayTesting
import XCTest
@testable import GatewayCrypto

final class DigestAndRandomTests: XCTestCase {
    func testSHA256KnownAnswers() {
        XCTAssertEqual(SHA256Digest([]).hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256Digest(Array("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256Digest(Array("abc".utf8)).bytes, hexBytes("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
    }

    func testSHA256FromRawBufferEqualsFromArray() {
        let bytes = Array("the same bytes".utf8)
        let viaBuffer = bytes.withUnsafeBytes { SHA256Digest($0) }
        XCTAssertEqual(viaBuffer, SHA256Digest(bytes))
        XCTAssertEqual(Set([viaBuffer, SHA256Digest(bytes)]).count, 1)
        XCTAssertNotEqual(SHA256Digest(bytes), SHA256Digest(bytes + [0]))
    }

    func testSecureRandomFillsAndDiffers() throws {
        let a = try XCTUnwrap(SecureRandom.bytes(32))
        let b = try XCTUnwrap(SecureRandom.bytes(32))
        XCTAssertEqual(a.count, 32)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(SecureRandom.bytes(0), [])
        var word: UInt64 = 0
        XCTAssertTrue(withUnsafeMutableBytes(of: &word) { SecureRandom.fill($0) })
    }
}
