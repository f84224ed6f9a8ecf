import XCTest
@testable import GatewayCrypto

final class KeyAndCertificateTests: XCTestCase {
    func testPrivateKeyPEMRoundTrips() throws {
        let pem = try Fixtures.rsaKey.privateKeyPEM()
        XCTAssertTrue(String(decoding: pem, as: UTF8.self).hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let reloaded = try PrivateKey(pem: pem)
        XCTAssertTrue(reloaded.isRSA)
        XCTAssertEqual(try reloaded.rsaPublicNumbers().modulus, try Fixtures.rsaKey.rsaPublicNumbers().modulus)
        let message = Array("m".utf8)
        XCTAssertEqual(try reloaded.sign(message, padding: .pkcs1v15), try Fixtures.rsaKey.sign(message, padding: .pkcs1v15))
    }

    func testPublicKeyPEM() throws {
        let pem = String(decoding: try Fixtures.rsaKey.publicKeyPEM(), as: UTF8.self)
        XCTAssertTrue(pem.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        XCTAssertTrue(pem.hasSuffix("-----END PUBLIC KEY-----\n"))
    }

    func testNonRSAAndNonPEMKeys() throws {
        let ec = try PrivateKey(pem: Array(Fixtures.p256PrivateKeyPEM.utf8))
        XCTAssertFalse(ec.isRSA)
        XCTAssertThrowsError(try ec.rsaPublicNumbers()) { XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected) }
        for junk in ["", "not a key", Fixtures.certificatePEM] {
            XCTAssertThrowsError(try PrivateKey(pem: Array(junk.utf8))) { XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected) }
        }
    }

    func testCertificateThumbprint() throws {
        let certificate = try Certificate(pem: Array(Fixtures.certificatePEM.utf8))
        XCTAssertEqual(certificate.sha256Thumbprint.hex, Fixtures.certificateSHA256)
        XCTAssertEqual(certificate.sha256Thumbprint, SHA256Digest(certificate.der))
        XCTAssertEqual(certificate.der.first, 0x30)
        for junk in ["", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", Fixtures.p256PrivateKeyPEM] {
            XCTAssertThrowsError(try Certificate(pem: Array(junk.utf8))) { XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected) }
        }
    }
}
