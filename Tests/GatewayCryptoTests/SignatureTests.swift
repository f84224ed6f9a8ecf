import XCTest
@testable import GatewayCrypto

final class SignatureTests: XCTestCase {
    let message = Array("header.payload".utf8)

    func publicKey(of key: PrivateKey) throws -> PublicKey {
        let (n, e) = try key.rsaPublicNumbers()
        return try PublicKey(rsaModulus: n, exponent: e, minimumBits: 2048)
    }

    func verify(_ signature: [UInt8], _ message: [UInt8], _ key: PublicKey, _ scheme: SignatureScheme) -> Bool {
        message.withUnsafeBytes { key.isValidSignature(signature, of: $0, scheme: scheme) }
    }

    func testRS256SignsDeterministicallyAndVerifies() throws {
        let key = try publicKey(of: Fixtures.rsaKey)
        XCTAssertEqual(key.bits, 2048)
        let signature = try Fixtures.rsaKey.sign(message, padding: .pkcs1v15)
        XCTAssertEqual(signature.count, 256)
        XCTAssertEqual(try Fixtures.rsaKey.sign(message, padding: .pkcs1v15), signature, "PKCS#1 v1.5 has no randomness")
        XCTAssertTrue(verify(signature, message, key, .rs256))
        XCTAssertFalse(verify(signature, message, key, .ps256), "PKCS#1 v1.5 is not PSS")
    }

    func testPS256SignsRandomisedAndVerifies() throws {
        let key = try publicKey(of: Fixtures.rsaKey)
        let signature = try Fixtures.rsaKey.sign(message, padding: .pss)
        XCTAssertNotEqual(try Fixtures.rsaKey.sign(message, padding: .pss), signature, "a fresh salt every time")
        XCTAssertTrue(verify(signature, message, key, .ps256))
        XCTAssertFalse(verify(signature, message, key, .rs256), "PSS is not PKCS#1 v1.5")
    }

    func testWrongKeyChangedMessageAndBadLengthAreRefused() throws {
        let key = try publicKey(of: Fixtures.rsaKey)
        let stranger = try publicKey(of: Fixtures.otherRSAKey)
        for (padding, scheme) in [(RSAPadding.pkcs1v15, SignatureScheme.rs256), (.pss, .ps256)] {
            let signature = try Fixtures.rsaKey.sign(message, padding: padding)
            XCTAssertFalse(verify(signature, message, stranger, scheme), "another key's signature")
            XCTAssertFalse(verify(signature, message + [0], key, scheme), "a changed message")
            XCTAssertFalse(verify([0] + signature, message, key, scheme), "a signature longer than the modulus")
            XCTAssertFalse(verify(Array(signature.dropFirst()), message, key, scheme), "a signature shorter than the modulus")
            XCTAssertFalse(verify([], message, key, scheme))
        }
    }

    func testRSAPublicKeyLimits() throws {
        let (n, e) = try Fixtures.rsaKey.rsaPublicNumbers()
        XCTAssertEqual(e, [0x01, 0x00, 0x01])
        XCTAssertThrowsError(try PublicKey(rsaModulus: n, exponent: e, minimumBits: 4096)) {
            XCTAssertEqual(($0 as? CryptoError)?.reason, .keyTooSmall)
        }
        // Leading zero bytes do not count towards the size.
        XCTAssertEqual(try PublicKey(rsaModulus: [0, 0] + n, exponent: e, minimumBits: 2048).bits, 2048)
        for exponent: [UInt8] in [[1], [0x01, 0x00, 0x00], [0x01, 0x00, 0x00, 0x00, 0x01], []] {
            XCTAssertThrowsError(try PublicKey(rsaModulus: n, exponent: exponent, minimumBits: 2048), "e=\(exponent)") {
                XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected)
            }
        }
    }

    func testES256KnownSignature() throws {
        let key = try PublicKey(p256X: Fixtures.p256X, y: Fixtures.p256Y)
        XCTAssertEqual(key.bits, 256)
        XCTAssertTrue(verify(Fixtures.es256Signature, Fixtures.es256Message, key, .es256))
        XCTAssertFalse(verify(Fixtures.es256Signature, Fixtures.es256Message + [0], key, .es256))
        var flipped = Fixtures.es256Signature
        flipped[40] ^= 0x01
        XCTAssertFalse(verify(flipped, Fixtures.es256Message, key, .es256))
        XCTAssertFalse(verify(Array(Fixtures.es256Signature.dropLast()), Fixtures.es256Message, key, .es256), "r||s is 64 bytes")
        let rsa = try publicKey(of: Fixtures.rsaKey)
        XCTAssertFalse(verify(Fixtures.es256Signature, Fixtures.es256Message, rsa, .es256), "another key")
    }

    func testPointOffTheCurveIsRejected() {
        var y = Fixtures.p256Y
        y[31] ^= 0x01
        XCTAssertThrowsError(try PublicKey(p256X: Fixtures.p256X, y: y)) { XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected) }
    }

    func testECDSADEREncoding() {
        let r = [UInt8](repeating: 0, count: 31) + [0x05]
        let s = [0x80] + [UInt8](repeating: 0x11, count: 31)
        let der = PublicKey.ecdsaDER(r: r[...], s: s[...])
        // r loses its leading zeros; s gains one so it stays positive.
        XCTAssertEqual(der, [0x30, 0x26, 0x02, 0x01, 0x05, 0x02, 0x21, 0x00] + s)
        XCTAssertEqual(PublicKey.ecdsaDER(r: [0, 0][...], s: [0x7f][...]), [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x7f])
    }
}
