import Foundation
import GatewayStore
import MCPJSON
import XCTest
@testable import MCPGateway

/// Sessions at rest: the key file, the seal, cookies, and the store table.
final class BackendSessionStorageTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "mcp-fcgi-backend-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testKeyFileIsCreatedOwnerOnlyOnceEvenWhenManyStartAtOnce() throws {
        let ciphers = UnsafeMutableBufferPointer<SessionCipher?>.allocate(capacity: 16)
        ciphers.initialize(repeating: nil)
        defer { ciphers.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 16) { i in ciphers[i] = try? SessionCipher.loadOrCreate(stateDirectory: dir) }
        let path = dir + "/" + SessionCipher.keyFileName
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [SessionCipher.keyFileName], "no temp files left")
        // Every starter ended up with the same key: what one sealed, any other opens.
        let sealed = try XCTUnwrap(ciphers[0]).seal(Array("session=abc".utf8), associatedData: [1])
        for i in 0..<16 {
            XCTAssertEqual(try XCTUnwrap(ciphers[i]).unseal(sealed, associatedData: [1]), Array("session=abc".utf8))
        }
    }

    func testAKeyOthersCanReadIsRefused() throws {
        _ = try SessionCipher.loadOrCreate(stateDirectory: dir)
        chmod(dir + "/" + SessionCipher.keyFileName, 0o644)
        XCTAssertThrowsError(try SessionCipher.loadOrCreate(stateDirectory: dir)) { e in
            XCTAssertTrue("\(e)".contains("chmod 600"), "\(e)")
        }
    }

    func testSealIsRandomisedAndBoundToItsRow() throws {
        let c = try SessionCipher.loadOrCreate(stateDirectory: dir)
        let plain = Array("session=s3cr3t".utf8)
        let a = try c.seal(plain, associatedData: Array("row-a".utf8))
        let b = try c.seal(plain, associatedData: Array("row-a".utf8))
        XCTAssertNotEqual(a, b, "a fresh nonce for every seal")
        XCTAssertEqual(a.count, 1 + 12 + plain.count + 16)
        XCTAssertEqual(try c.unseal(a, associatedData: Array("row-a".utf8)), plain)
        XCTAssertThrowsError(try c.unseal(a, associatedData: Array("row-b".utf8)), "another row's data does not open")
        var tampered = a
        tampered[20] ^= 1
        XCTAssertThrowsError(try c.unseal(tampered, associatedData: Array("row-a".utf8)))
        let other = try SessionCipher(key: [UInt8](repeating: 7, count: 32))
        XCTAssertThrowsError(try other.unseal(a, associatedData: Array("row-a".utf8)), "another key does not open")
        XCTAssertThrowsError(try SessionCipher(key: [1, 2, 3]))
    }

    func testCookieJarFollowsMaxAgeExpiresAndDeletion() {
        var jar = CookieJar()
        let now = 1_900_000_000.0
        XCTAssertTrue(jar.absorb(["session=abc; Max-Age=60; Path=/; HttpOnly; Secure",
                                  "csrf=\"q1\"; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
                                  "bad cookie=x", "=novalue", "x=a b", "y=a\\b"], now: now))
        XCTAssertEqual(jar.cookies.map(\.name), ["session", "csrf"])
        XCTAssertEqual(jar.header(now: now), "session=abc; csrf=q1")
        XCTAssertEqual(jar.expiresAt, now + 60)
        XCTAssertFalse(jar.isExpired(now: now + 59))
        XCTAssertTrue(jar.isExpired(now: now + 60))
        XCTAssertEqual(jar.header(now: now + 61), "csrf=q1")
        XCTAssertFalse(jar.absorb(["session=abc; Max-Age=60"], now: now), "same cookie, same expiry: nothing changed")
        XCTAssertTrue(jar.absorb(["session=; Max-Age=0"], now: now))
        XCTAssertEqual(jar.cookies.map(\.name), ["csrf"])
        XCTAssertEqual(jar.cookies.first?.expiresAt, 2_139_722_880)
        let copy = try? CookieJar(serialized: jar.serialized)
        XCTAssertEqual(copy, jar)
    }
}
