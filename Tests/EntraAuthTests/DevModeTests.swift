import Foundation
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import EntraAuth

/// Development mode: a local key in the state directory, no network.
final class DevModeTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDirectory() + "/state" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }

    func configuration() -> EntraConfiguration {
        var c = EntraConfiguration(audiences: [Fixture.audience], allowedTenants: [Fixture.tenantA], stateDirectory: dir)
        c.developmentMode = true
        c.acceptAppOnlyTokens = true
        return c
    }

    func testKeyIsCreatedOncePrivatelyAndReused() throws {
        let a = try DevSigningKey.loadOrCreate(stateDirectory: dir)
        let path = dir + "/" + DevSigningKey.fileName
        XCTAssertEqual(StateFiles.mode(path), 0o600)
        XCTAssertEqual(StateFiles.mode(dir), 0o700)
        let b = try DevSigningKey.loadOrCreate(stateDirectory: dir)
        XCTAssertEqual(a.keyID, b.keyID)
        XCTAssertEqual(a.modulus.count, 256)
        XCTAssertEqual(a.jwks["keys"]?.arrayValue?.first?["kid"]?.stringValue, a.keyID)
        chmod(path, 0o644)
        XCTAssertThrowsError(try DevSigningKey.loadOrCreate(stateDirectory: dir))
    }

    func testThumbprintFollowsRFC7638() throws {
        // RFC 7638 section 3.1 example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        let thumbprint = DevSigningKey.rsaThumbprint(n: Base64.decodeURL(Array(n.utf8))!, e: Base64.decodeURL(Array("AQAB".utf8))!)
        XCTAssertEqual(thumbprint, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        XCTAssertEqual(Fixture.key.keyID, DevSigningKey.rsaThumbprint(n: Fixture.key.modulus, e: Fixture.key.exponent))
    }

    func testMintedTokensVerifyAgainstTheStoredKeyOnly() throws {
        let verifier = try TokenVerifier(configuration: configuration())
        let minter = DevTokenMinter(key: try DevSigningKey.loadOrCreate(stateDirectory: dir))
        let user = try minter.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: Fixture.audience,
                                   scopes: ["access_as_user"], roles: ["Reports.Read"], name: "Dev User")
        let p = try verifier.verify(user)
        XCTAssertEqual(p.tenantId, Fixture.tenantA)
        XCTAssertEqual(p.objectId, Fixture.oid)
        XCTAssertEqual(p.scopes, ["access_as_user"])
        XCTAssertEqual(p.roles, ["Reports.Read"])
        XCTAssertEqual(p.issuer, "https://dev.mcp-fcgi.invalid/\(Fixture.tenantA)/v2.0")
        XCTAssertFalse(p.isAppOnly)
        XCTAssertFalse(p.groupsOverflowed)
        let overage = try minter.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: Fixture.audience, scopes: ["a"],
                                      extraClaims: ["_claim_names": ["groups": "src1"], "_claim_sources": ["src1": ["endpoint": "https://graph"]]])
        XCTAssertTrue(try verifier.verify(overage).groupsOverflowed)
        XCTAssertTrue(try verifier.verify(try minter.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: Fixture.audience,
                                                          scopes: ["a"], extraClaims: ["hasgroups": true])).groupsOverflowed)

        let app = try minter.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: Fixture.audience, roles: ["Admin"])
        XCTAssertTrue(try verifier.verify(app).isAppOnly)

        XCTAssertRefused(verifier, try minter.mint(tenantId: Fixture.tenantB, objectId: Fixture.oid, audience: Fixture.audience,
                                                  scopes: ["x"]), .tenantNotAllowed)
        XCTAssertRefused(verifier, try minter.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: "api://other",
                                                  scopes: ["x"]), .invalidAudience)
        XCTAssertRefused(verifier, try minter.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: Fixture.audience,
                                                  scopes: ["x"], ttl: -600), .expired)
        // Another key (even a dev key) is not trusted, and Entra issuers are not dev issuers.
        let stranger = DevTokenMinter(key: Fixture.otherKey)
        XCTAssertRefused(verifier, try stranger.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: Fixture.audience,
                                                    scopes: ["x"]), .unknownSigningKey)
        let entraShaped = Fixture.token(header: Fixture.header(kid: minter.key.keyID), claims: Fixture.claims(now: systemClockSeconds()),
                                        signedBy: minter.key)
        XCTAssertRefused(verifier, entraShaped, .invalidIssuer)
    }

    func testPrincipalJSONForWhoami() throws {
        let minter = DevTokenMinter(key: Fixture.key, clock: { 1_800_000_000 })
        let t = try minter.mint(tenantId: Fixture.tenantA, objectId: Fixture.oid, audience: Fixture.audience,
                                scopes: ["a", "b"], name: "Dev", extraClaims: JSONObject(["groups": ["g1"]]))
        let v = TokenVerifier(policy: Fixture.policy(authority: "https://dev.mcp-fcgi.invalid"),
                              keys: StaticKeyProvider(keys: [try Fixture.key.verificationKey()]), clock: { 1_800_000_100 })
        let json = try v.verify(t).json
        XCTAssertEqual(json["tenantId"]?.stringValue, Fixture.tenantA)
        XCTAssertEqual(json["scopes"], ["a", "b"])
        XCTAssertEqual(json["groups"], ["g1"])
        XCTAssertEqual(json["kind"], "delegated")
        XCTAssertEqual(json["expiresAt"], .integer(1_800_003_600))
        XCTAssertFalse(JSONWriter.string(json).contains(t.split(separator: ".")[2]))
    }
}
