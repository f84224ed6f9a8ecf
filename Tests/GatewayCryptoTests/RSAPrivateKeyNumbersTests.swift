import MCPJSON
import XCTest
@testable import GatewayCrypto

/// RSA private keys read from PEM without OpenSSL's decoders: the same key as OpenSSL reads,
/// both PEM forms, and everything else left to OpenSSL (which refuses what is not a key).
final class RSAPrivateKeyNumbersTests: XCTestCase {
    static func pem(_ label: String, _ der: [UInt8], lineBreak: String = "\n") -> [UInt8] {
        let body = Base64.encode(der)
        var lines = ["-----BEGIN \(label)-----"]
        var rest = Substring(body)
        while !rest.isEmpty { lines.append(String(rest.prefix(64))); rest = rest.dropFirst(64) }
        lines.append("-----END \(label)-----")
        return Array((lines.joined(separator: lineBreak) + lineBreak).utf8)
    }

    /// The DER inside this project's PKCS#8 PEM.
    static func pkcs8DER() throws -> [UInt8] {
        try XCTUnwrap(RSAPrivateKeyNumbers.pemBody(try Fixtures.rsaKey.privateKeyPEM(), label: "PRIVATE KEY"))
    }

    /// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo: its OCTET STRING's contents.
    static func pkcs1DER(inside pkcs8: [UInt8]) throws -> [UInt8] {
        var outer = DERReader(pkcs8[...])
        var info = try XCTUnwrap(outer.read(tag: 0x30))
        _ = try XCTUnwrap(info.readUnsignedInteger())
        _ = try XCTUnwrap(info.read(tag: 0x30))
        let octets = try XCTUnwrap(info.read(tag: 0x04))
        return Array(octets.rest)
    }

    func testThisProjectsPEMIsTheKeyOpenSSLReads() throws {
        let pem = try Fixtures.rsaKey.privateKeyPEM()
        let numbers = try XCTUnwrap(RSAPrivateKeyNumbers.parse(pem: pem))
        let (n, e) = try Fixtures.rsaKey.rsaPublicNumbers()
        XCTAssertEqual(numbers.n, n)
        XCTAssertEqual(numbers.e, e)
        let reloaded = try PrivateKey(pem: pem)
        XCTAssertTrue(reloaded.isRSA)
        // The same numbers written out again: byte for byte the file it came from.
        XCTAssertEqual(try reloaded.privateKeyPEM(), pem)
        let message = Array("m".utf8)
        XCTAssertEqual(try reloaded.sign(message, padding: .pkcs1v15), try Fixtures.rsaKey.sign(message, padding: .pkcs1v15))
        let pss = try reloaded.sign(message, padding: .pss)
        let (pn, pe) = try reloaded.rsaPublicNumbers()
        let verifier = try PublicKey(rsaModulus: pn, exponent: pe, minimumBits: 2048)
        XCTAssertTrue(message.withUnsafeBytes { verifier.isValidSignature(pss, of: $0, scheme: .ps256) })
    }

    func testTraditionalRSAPEMAndCRLFLineBreaks() throws {
        let pkcs8 = try Self.pkcs8DER()
        let pkcs1 = try Self.pkcs1DER(inside: pkcs8)
        XCTAssertEqual(pkcs1.first, 0x30)
        let message = Array("m".utf8)
        let expected = try Fixtures.rsaKey.sign(message, padding: .pkcs1v15)
        for pem in [Self.pem("RSA PRIVATE KEY", pkcs1), Self.pem("RSA PRIVATE KEY", pkcs1, lineBreak: "\r\n"),
                    Self.pem("PRIVATE KEY", pkcs8, lineBreak: "\r\n")] {
            XCTAssertNotNil(RSAPrivateKeyNumbers.parse(pem: pem))
            XCTAssertEqual(try PrivateKey(pem: pem).sign(message, padding: .pkcs1v15), expected)
        }
        // The PKCS#1 body under the PKCS#8 label (and the other way round) is no key of either form.
        XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: Self.pem("PRIVATE KEY", pkcs1)))
        XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: Self.pem("RSA PRIVATE KEY", pkcs8)))
    }

    func testEveryTruncationAndEveryFlippedTagIsRefused() throws {
        let der = try Self.pkcs8DER()
        for length in 0..<der.count {
            let pem = Self.pem("PRIVATE KEY", Array(der.prefix(length)))
            XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: pem), "truncated to \(length)")
            XCTAssertThrowsError(try PrivateKey(pem: pem), "truncated to \(length)") {
                XCTAssertEqual(($0 as? CryptoError)?.reason, .rejected)
            }
        }
        // One byte more after the key is not DER of a key either.
        XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: Self.pem("PRIVATE KEY", der + [0])))
        // A different algorithm OID (the EC one's first byte) makes it no RSA key.
        var otherOID = der
        let oidAt = try XCTUnwrap((0..<der.count - 9).first { Array(der[$0..<($0 + 9)]) == RSAPrivateKeyNumbers.rsaEncryption })
        otherOID[oidAt + 8] = 0x02
        XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: Self.pem("PRIVATE KEY", otherOID)))
    }

    func testIntegersAndLengthsMustBeMinimalAndPositive() {
        func integer(_ bytes: [UInt8]) -> [UInt8]? {
            var r = DERReader(bytes[...])
            return r.readUnsignedInteger()
        }
        XCTAssertEqual(integer([0x02, 0x01, 0x00]), [])
        XCTAssertEqual(integer([0x02, 0x02, 0x00, 0x80]), [0x80])
        XCTAssertNil(integer([0x02, 0x02, 0x00, 0x7F]), "a needless leading zero")
        XCTAssertNil(integer([0x02, 0x01, 0x80]), "negative")
        XCTAssertNil(integer([0x02, 0x00]), "empty")
        XCTAssertNil(integer([0x02, 0x81, 0x01, 0x05]), "long form for a short length")
        XCTAssertNil(integer([0x02, 0x80, 0x05, 0x00, 0x00]), "indefinite length")
        XCTAssertNil(integer([0x02, 0x84, 0x00, 0x00, 0x00, 0x01, 0x05]), "four length bytes")
        XCTAssertNil(integer([0x02, 0x05, 0x01]), "longer than what is left")
    }

    func testOtherPEMIsLeftToOpenSSL() throws {
        // An EC key, an encrypted key, a key with text around it: not read here; OpenSSL reads or refuses them.
        XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: Array(Fixtures.p256PrivateKeyPEM.utf8)))
        XCTAssertFalse(try PrivateKey(pem: Array(Fixtures.p256PrivateKeyPEM.utf8)).isRSA)
        let der = try Self.pkcs8DER()
        XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: Self.pem("ENCRYPTED PRIVATE KEY", der)))
        let commented = Array("a comment before the block\n".utf8) + (try Fixtures.rsaKey.privateKeyPEM())
        XCTAssertNil(RSAPrivateKeyNumbers.parse(pem: commented))
        XCTAssertTrue(try PrivateKey(pem: commented).isRSA, "OpenSSL skips text before the block, as before")
    }
}
