import XCTest
@testable import GatewayCrypto
import MCPGatewayTesting

final class AES256GCMTests: XCTestCase {
    // The GCM specification's test case 16 (McGrew and Viega): AES-256, 96-bit IV, associated data.
    let key = hexBytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
    let nonce = hexBytes("cafebabefacedbaddecaf888")
    let plaintext = hexBytes("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                                 + "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
    let associatedData = hexBytes("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    let ciphertext = hexBytes("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                                  + "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662")
    let tag = hexBytes("76fc6ece0f4e1768cddf8853bb2d551b")

    func testKnownAnswer() throws {
        let gcm = try AES256GCM(key: key)
        let sealed = try gcm.seal(plaintext, nonce: nonce, associatedData: associatedData)
        XCTAssertEqual(sealed.ciphertext, ciphertext)
        XCTAssertEqual(sealed.tag, tag)
        XCTAssertEqual(try gcm.open(ciphertext, tag: tag, nonce: nonce, associatedData: associatedData), plaintext)
    }

    func testEmptyPlaintextRoundTrips() throws {
        let gcm = try AES256GCM(key: key)
        let sealed = try gcm.seal([], nonce: nonce, associatedData: [])
        XCTAssertEqual(sealed.ciphertext, [])
        XCTAssertEqual(sealed.tag.count, AES256GCM.tagLength)
        XCTAssertEqual(try gcm.open([], tag: sealed.tag, nonce: nonce, associatedData: []), [])
    }

    func testTamperingIsRefused() throws {
        let gcm = try AES256GCM(key: key)
        func assertNotAuthentic(_ body: () throws(CryptoError) -> [UInt8], _ what: String) {
            do {
                _ = try body()
                XCTFail("\(what) opened")
            } catch {
                XCTAssertEqual(error.reason, .notAuthentic, what)
            }
        }
        var flipped = ciphertext
        flipped[7] ^= 0x01
        assertNotAuthentic({ () throws(CryptoError) in try gcm.open(flipped, tag: tag, nonce: nonce, associatedData: associatedData) },
                           "a changed ciphertext byte")
        var badTag = tag
        badTag[15] ^= 0x80
        assertNotAuthentic({ () throws(CryptoError) in try gcm.open(ciphertext, tag: badTag, nonce: nonce, associatedData: associatedData) },
                           "a changed tag")
        assertNotAuthentic({ () throws(CryptoError) in try gcm.open(ciphertext, tag: tag, nonce: nonce, associatedData: associatedData + [0]) },
                           "other associated data")
        var otherNonce = nonce
        otherNonce[0] ^= 0x01
        assertNotAuthentic({ () throws(CryptoError) in try gcm.open(ciphertext, tag: tag, nonce: otherNonce, associatedData: associatedData) },
                           "another nonce")
        let otherKey = try AES256GCM(key: [UInt8](repeating: 7, count: 32))
        assertNotAuthentic({ () throws(CryptoError) in try otherKey.open(ciphertext, tag: tag, nonce: nonce, associatedData: associatedData) },
                           "another key")
        assertNotAuthentic({ () throws(CryptoError) in try gcm.open(Array(ciphertext.dropLast()), tag: tag, nonce: nonce, associatedData: associatedData) },
                           "a truncated ciphertext")
    }

    func testWrongLengthsAreRejected() throws {
        XCTAssertThrowsError(try AES256GCM(key: [UInt8](repeating: 1, count: 16))) { XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected) }
        let gcm = try AES256GCM(key: key)
        XCTAssertThrowsError(try gcm.seal(plaintext, nonce: [1, 2, 3], associatedData: [])) { XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected) }
        XCTAssertThrowsError(try gcm.open(ciphertext, tag: Array(tag.prefix(12)), nonce: nonce, associatedData: associatedData)) {
            XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected)
        }
    }
}
