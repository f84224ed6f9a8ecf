import Foundation
import GatewayCrypto
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import EntraAuth

/// The attack catalogue: each hostile or broken token must fail with the exact error.
final class VerifierAttackTests: XCTestCase {
    var clock = TestClock<Int64>()
    var verifier: TokenVerifier!

    override func setUp() {
        clock = TestClock<Int64>()
        verifier = makeVerifier()
    }

    func makeVerifier(policy: ClaimsPolicy = Fixture.policy(), keys: [VerificationKey]? = nil,
                      algorithms: Set<JWSAlgorithm> = [.rs256]) -> TokenVerifier {
        TokenVerifier(policy: policy, keys: StaticKeyProvider(keys: keys ?? [try! Fixture.key.verificationKey()]),
                      allowedAlgorithms: algorithms, clock: clock.closure)
    }

    var now: Int64 { clock.now }
    func good() -> String { Fixture.token(claims: Fixture.claims(now: now)) }

    // MARK: accepted shapes

    func testValidV2DelegatedToken() throws {
        let p = try verifier.verify(good())
        XCTAssertEqual(p.tenantId, Fixture.tenantA)
        XCTAssertEqual(p.objectId, Fixture.oid)
        XCTAssertEqual(p.scopes, ["access_as_user"])
        XCTAssertEqual(p.clientAppId, "11111111-2222-3333-4444-555555555555")
        XCTAssertEqual(p.tokenVersion, "2.0")
        XCTAssertFalse(p.isAppOnly)
        XCTAssertEqual(p.expiresAt, now + 3600)
        XCTAssertEqual(p.userPrincipalName, "abe@contoso.com")
        XCTAssertEqual(p.json["kind"], "delegated")
        XCTAssertNil(p.groups)
    }

    func testV1TokenAcceptedWhenEnabledAndRefusedOtherwise() throws {
        var c = Fixture.claims(iss: Fixture.v1Issuer(Fixture.tenantB), aud: .string(Fixture.appIDURI), now: now)
        c["tid"] = .string(Fixture.tenantB)
        c["ver"] = "1.0"
        c["azp"] = nil
        c["appid"] = "99999999-2222-3333-4444-555555555555"
        c["preferred_username"] = nil
        c["upn"] = "abe@fabrikam.com"
        c["scp"] = "User.Read access_as_user"
        let t = Fixture.token(claims: c)
        let p = try verifier.verify(t)
        XCTAssertEqual(p.tokenVersion, "1.0")
        XCTAssertEqual(p.clientAppId, "99999999-2222-3333-4444-555555555555")
        XCTAssertEqual(p.userPrincipalName, "abe@fabrikam.com")
        XCTAssertEqual(p.scopes, ["User.Read", "access_as_user"])
        XCTAssertRefused(makeVerifier(policy: Fixture.policy(v1: false)), t, .invalidIssuer)
    }

    func testSeveralTenants() throws {
        for tid in [Fixture.tenantA, Fixture.tenantB] {
            XCTAssertEqual(try verifier.verify(Fixture.token(claims: Fixture.claims(tid: tid, now: now))).tenantId, tid)
        }
        let third = Fixture.token(claims: Fixture.claims(tid: Fixture.tenantC, now: now))
        XCTAssertRefused(verifier, third, .tenantNotAllowed)
        // Accepting any tenant is an explicit, separate switch.
        let open = makeVerifier(policy: Fixture.policy(tenants: [], acceptAnyTenant: true))
        XCTAssertEqual(try open.verify(third).tenantId, Fixture.tenantC)
    }

    func testAudienceArrayNamingUsIsAccepted() throws {
        let c = Fixture.claims(aud: .array(["https://other.example", .string(Fixture.audience)]), now: now)
        XCTAssertNoThrow(try verifier.verify(Fixture.token(claims: c)))
    }

    func testClockSkewLeeway() throws {
        let c = Fixture.claims(now: now - 3600 - 60)  // expired 60 s ago, skew is 120 s
        XCTAssertNoThrow(try verifier.verify(Fixture.token(claims: c)))
    }

    // MARK: algorithm and header attacks

    func testAlgNone() {
        let h = Fixture.b64(#"{"alg":"none","kid":"\#(Fixture.key.keyID)"}"#)
        let p = Base64.encodeURL(JSONWriter.serialize(.object(Fixture.claims(now: now))))
        XCTAssertRefused(verifier, "\(h).\(p).", .unsupportedAlgorithm)
        XCTAssertRefused(verifier, "\(h).\(p).AAAA", .unsupportedAlgorithm)
        let h2 = Fixture.b64(#"{"alg":"None","kid":"x"}"#)
        XCTAssertRefused(verifier, "\(h2).\(p).", .unsupportedAlgorithm)
    }

    func testHS256WithThePublicKeyAsSecret() throws {
        // The classic confusion attack: HMAC keyed with the RSA public key bytes.
        let pub = try Fixture.key.verificationKey()
        let pem = Array(try Fixture.key.publicKeyPEM().utf8)
        XCTAssertTrue(String(decoding: pem, as: UTF8.self).hasPrefix("-----BEGIN PUBLIC KEY-----"))
        let jwkText = JSONWriter.serialize(.object(Fixture.key.publicJWK))
        for secret in [pem, Fixture.key.modulus, jwkText] {
            let input = Base64.encodeURL(JSONWriter.serialize(.object(Fixture.header(kid: pub.keyID, alg: "HS256"))))
                + "." + Base64.encodeURL(JSONWriter.serialize(.object(Fixture.claims(now: now))))
            let mac = Fixture.hmacSHA256(key: secret, message: Array(input.utf8))
            XCTAssertRefused(verifier, input + "." + Base64.encodeURL(mac), .unsupportedAlgorithm)
        }
    }

    func testAlgorithmNotOnAllowListEvenIfSupported() {
        let t = Fixture.token(header: Fixture.header(alg: "PS256"), claims: Fixture.claims(now: now))
        XCTAssertRefused(verifier, t, .unsupportedAlgorithm)
        // Allowed, but the key is an RS256 key: no borrowing across algorithms.
        XCTAssertRefused(makeVerifier(algorithms: [.rs256, .ps256]), t, .algorithmKeyMismatch)
    }

    func testMissingKid() {
        let t = Fixture.token(header: JSONObject(["alg": "RS256", "typ": "JWT"]), claims: Fixture.claims(now: now))
        XCTAssertRefused(verifier, t, .missingKeyID)
        let t2 = Fixture.token(header: Fixture.header(kid: ""), claims: Fixture.claims(now: now))
        XCTAssertRefused(verifier, t2, .missingKeyID)
    }

    func testUnknownKid() {
        let t = Fixture.token(header: Fixture.header(kid: "not-a-known-key"), claims: Fixture.claims(now: now))
        XCTAssertRefused(verifier, t, .unknownSigningKey)
    }

    func testKeysOfferedInTheHeaderAreIgnored() throws {
        let embedded: JSONObject = JSONObject([
            "jwk": .object(Fixture.otherKey.publicJWK),
            "jku": "https://attacker.example/keys",
            "x5u": "https://attacker.example/cert.pem",
            "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
        ])
        // Signed by the real key: the extra headers change nothing.
        XCTAssertNoThrow(try verifier.verify(Fixture.token(header: Fixture.header(extra: embedded), claims: Fixture.claims(now: now))))
        // Signed by the embedded key, naming it by its own kid: unknown to us.
        let own = Fixture.token(header: Fixture.header(kid: Fixture.otherKey.keyID, extra: embedded),
                                claims: Fixture.claims(now: now), signedBy: Fixture.otherKey)
        XCTAssertRefused(verifier, own, .unknownSigningKey)
        // Signed by the embedded key, claiming our kid: the JWKS key says no.
        let claimed = Fixture.token(header: Fixture.header(extra: embedded), claims: Fixture.claims(now: now), signedBy: Fixture.otherKey)
        XCTAssertRefused(verifier, claimed, .badSignature)
    }

    func testSignedByAnotherKeyWithOurKid() {
        XCTAssertRefused(verifier, Fixture.token(claims: Fixture.claims(now: now), signedBy: Fixture.otherKey), .badSignature)
    }

    func testTamperedPayload() {
        let parts = good().split(separator: ".").map(String.init)
        var c = Fixture.claims(now: now)
        c["roles"] = ["Admin"]
        let forged = parts[0] + "." + Base64.encodeURL(JSONWriter.serialize(.object(c))) + "." + parts[2]
        XCTAssertRefused(verifier, forged, .badSignature)
    }

    func testNonceHeaderIsAGraphToken() {
        let t = Fixture.token(header: Fixture.header(extra: JSONObject(["nonce": "AQABAAAAAAD"])), claims: Fixture.claims(now: now))
        XCTAssertRefused(verifier, t, .graphToken)
        XCTAssertTrue(TokenVerificationError.graphToken.errorDescription.contains("Microsoft Graph"))
    }

    func testCritHeaderRejected() {
        let t = Fixture.token(header: Fixture.header(extra: JSONObject(["crit": ["exp"], "exp": 1])), claims: Fixture.claims(now: now))
        XCTAssertRefused(verifier, t, .criticalHeaderNotSupported)
    }

    // MARK: structural attacks

    func testSegmentCounts() {
        let t = good()
        let parts = t.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        XCTAssertRefused(verifier, parts[0] + "." + parts[1], .malformedToken(.segmentCount))
        XCTAssertRefused(verifier, t + ".", .malformedToken(.segmentCount))
        XCTAssertRefused(verifier, t + "." + parts[2], .malformedToken(.segmentCount))
        XCTAssertRefused(verifier, "a.b.c.d.e", .malformedToken(.segmentCount))
        XCTAssertRefused(verifier, "", .malformedToken(.segmentCount))
        XCTAssertRefused(verifier, ".." , .malformedToken(.segmentCount))
        XCTAssertRefused(verifier, String(t.dropLast(10)), .badSignature)
    }

    func testPaddingAndForeignCharacters() {
        let t = good()
        let parts = t.split(separator: ".").map(String.init)
        XCTAssertRefused(verifier, t + "=", .malformedToken(.invalidBase64URL))
        XCTAssertRefused(verifier, t + "==", .malformedToken(.invalidBase64URL))
        XCTAssertRefused(verifier, parts[0] + "." + parts[1] + "=." + parts[2], .malformedToken(.invalidBase64URL))
        XCTAssertRefused(verifier, parts[0] + "." + parts[1] + "." + parts[2].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/") + "+/", .malformedToken(.invalidBase64URL))
        XCTAssertRefused(verifier, parts[0] + " ." + parts[1] + "." + parts[2], .malformedToken(.invalidBase64URL))
        XCTAssertRefused(verifier, parts[0] + "." + parts[1] + "\n." + parts[2], .malformedToken(.invalidBase64URL))
        XCTAssertRefused(verifier, " " + t, .malformedToken(.invalidBase64URL))
        XCTAssertRefused(verifier, parts[0] + "=." + parts[1] + "." + parts[2], .malformedToken(.invalidBase64URL))
    }

    func testNonJSONHeader() {
        let rest = good().split(separator: ".").dropFirst().joined(separator: ".")
        for h in ["not json", "[1,2,3]", #""RS256""#, #"{"alg":"RS256","alg":"RS256","kid":"a"}"#, #"{"alg":"RS256",}"#] {
            XCTAssertRefused(verifier, Fixture.b64(h) + "." + rest, .malformedToken(.headerNotJSONObject))
        }
        XCTAssertRefused(verifier, Fixture.b64(#"{"alg":256,"kid":"a"}"#) + "." + rest, .malformedToken(.invalidHeaderField))
    }

    func testNonJSONPayloadWithValidSignature() {
        let h = Base64.encodeURL(JSONWriter.serialize(.object(Fixture.header())))
        let input = h + "." + Fixture.b64("[\"not an object\"]")
        let sig = try! Fixture.key.signRS256(Array(input.utf8))
        XCTAssertRefused(verifier, input + "." + Base64.encodeURL(sig), .malformedToken(.payloadNotJSONObject))
    }

    func testOversizedToken() {
        var c = Fixture.claims(now: now)
        c["padding"] = .string(String(repeating: "x", count: 17_000))
        XCTAssertRefused(verifier, Fixture.token(claims: c), .tokenTooLarge)
        XCTAssertRefused(verifier, String(repeating: "A", count: 1 << 20), .tokenTooLarge)
    }

    // MARK: claims

    func testExpiredAndNotYetValid() {
        XCTAssertRefused(verifier, Fixture.token(claims: Fixture.claims(now: now - 3600 - 121)), .expired)
        var c = Fixture.claims(now: now)
        c["nbf"] = .integer(Int(now + 600))
        XCTAssertRefused(verifier, Fixture.token(claims: c), .notYetValid)
        c = Fixture.claims(now: now)
        c["iat"] = .integer(Int(now + 600))
        XCTAssertRefused(verifier, Fixture.token(claims: c), .notYetValid)
        c = Fixture.claims(now: now)
        c["exp"] = nil
        XCTAssertRefused(verifier, Fixture.token(claims: c), .missingClaim(.exp))
        c = Fixture.claims(now: now)
        c["exp"] = "tomorrow"
        XCTAssertRefused(verifier, Fixture.token(claims: c), .malformedToken(.invalidClaim))
    }

    func testWrongAudience() {
        XCTAssertRefused(verifier, Fixture.token(claims: Fixture.claims(aud: "https://graph.microsoft.com", now: now)), .invalidAudience)
        XCTAssertRefused(verifier, Fixture.token(claims: Fixture.claims(aud: ["a", "b"], now: now)), .invalidAudience)
        XCTAssertRefused(verifier, Fixture.token(claims: Fixture.claims(aud: .array([]), now: now)), .invalidAudience)
        var c = Fixture.claims(now: now)
        c["aud"] = nil
        XCTAssertRefused(verifier, Fixture.token(claims: c), .missingClaim(.aud))
    }

    func testWrongIssuer() {
        let cases = [
            "https://login.microsoftonline.com/\(Fixture.tenantA)/v2.0/",
            "https://evil.example/\(Fixture.tenantA)/v2.0",
            "http://login.microsoftonline.com/\(Fixture.tenantA)/v2.0",
            "https://login.microsoftonline.com/common/v2.0/\(Fixture.tenantA)/v2.0",
            "https://sts.windows.net/\(Fixture.tenantA)",
        ]
        for iss in cases {
            XCTAssertRefused(verifier, Fixture.token(claims: Fixture.claims(iss: iss, now: now)), .invalidIssuer)
        }
    }

    func testTenantAndIssuerDisagree() {
        var c = Fixture.claims(tid: Fixture.tenantA, iss: Fixture.v2Issuer(Fixture.tenantB), now: now)
        XCTAssertRefused(verifier, Fixture.token(claims: c), .tenantIssuerMismatch)
        c = Fixture.claims(tid: "common", iss: Fixture.v2Issuer("common"), now: now)
        XCTAssertRefused(verifier, Fixture.token(claims: c), .tenantIssuerMismatch)
        c = Fixture.claims(now: now)
        c["tid"] = nil
        XCTAssertRefused(verifier, Fixture.token(claims: c), .missingClaim(.tid))
    }

    func testTokenKinds() throws {
        var app = Fixture.claims(now: now, scp: nil)
        app["roles"] = ["Reports.Read.All"]
        app["idtyp"] = "app"
        let appToken = Fixture.token(claims: app)
        XCTAssertRefused(verifier, appToken, .appOnlyTokenNotAccepted)
        let both = makeVerifier(policy: Fixture.policy(acceptAppOnly: true))
        let p = try both.verify(appToken)
        XCTAssertTrue(p.isAppOnly)
        XCTAssertEqual(p.roles, ["Reports.Read.All"])
        // No scp and no idtyp is still app-only.
        app["idtyp"] = nil
        XCTAssertRefused(verifier, Fixture.token(claims: app), .appOnlyTokenNotAccepted)
        let appOnly = makeVerifier(policy: Fixture.policy(acceptDelegated: false, acceptAppOnly: true))
        XCTAssertRefused(appOnly, good(), .delegatedTokenNotAccepted)
    }

    func testKeyTooSmallAndKeyBoundToAnotherIssuer() throws {
        var n = [UInt8](repeating: 0xA5, count: 128)
        n[0] = 0xC1
        let small = JSONValue.object(JSONObject(["keys": .array([.object(JSONObject([
            "kty": "RSA", "kid": "small", "n": .string(Base64.encodeURL(n)), "e": "AQAB"]))])]))
        let set = try KeySet(jwks: small)
        XCTAssertEqual(set.refused["small"], .signingKeyTooSmall)
        let v = TokenVerifier(policy: Fixture.policy(), keys: StaticKeyProvider(keySet: set), clock: clock.closure)
        XCTAssertRefused(v, Fixture.token(header: Fixture.header(kid: "small"), claims: Fixture.claims(now: now)), .signingKeyTooSmall)

        // Entra binds consumer-tenant keys to one issuer; such a key cannot sign for tenant A.
        var jwk = Fixture.key.publicJWK
        jwk["issuer"] = .string(Fixture.v2Issuer(Fixture.tenantB))
        let bound = TokenVerifier(policy: Fixture.policy(), keys: StaticKeyProvider(keys: [try VerificationKey(jwk: JWK(jwk)!)]),
                                  clock: clock.closure)
        XCTAssertRefused(bound, good(), .invalidIssuer)
        XCTAssertNoThrow(try bound.verify(Fixture.token(claims: Fixture.claims(tid: Fixture.tenantB, now: now))))
        jwk["issuer"] = "https://login.microsoftonline.com/{tenantid}/v2.0"
        let templated = TokenVerifier(policy: Fixture.policy(), keys: StaticKeyProvider(keys: [try VerificationKey(jwk: JWK(jwk)!)]),
                                      clock: clock.closure)
        XCTAssertNoThrow(try templated.verify(good()))
        // A v1 token is signed by the same key, whose issuer is in the v2 form.
        let v1 = Fixture.claims(iss: Fixture.v1Issuer(Fixture.tenantA), now: now)
        XCTAssertNoThrow(try templated.verify(Fixture.token(claims: v1)))
    }

    // MARK: cache and diagnostics

    func testCacheHitStillHonoursExpiry() throws {
        let t = good()
        _ = try verifier.verify(t)
        XCTAssertEqual(verifier.cachedTokens, 1)
        XCTAssertNoThrow(try verifier.verify(t))
        XCTAssertEqual(verifier.cachedTokens, 1)
        clock.advance(3600 + 121)
        XCTAssertRefused(verifier, t, .expired)
    }

    func testCacheIsBounded() {
        let v = TokenVerifier(policy: Fixture.policy(), keys: StaticKeyProvider(keys: [try! Fixture.key.verificationKey()]),
                              cacheCapacity: 3, clock: clock.closure)
        for i in 0..<5 {
            var c = Fixture.claims(now: now)
            c["uti"] = .string("token-\(i)")
            XCTAssertNoThrow(try v.verify(Fixture.token(claims: c)))
        }
        XCTAssertEqual(v.cachedTokens, 3)
    }

    func testDescriptionsAreSafeForWWWAuthenticate() {
        let token = good()
        let all: [TokenVerificationError] = [
            .malformedToken(.segmentCount), .malformedToken(.invalidBase64URL), .malformedToken(.headerNotJSONObject),
            .malformedToken(.payloadNotJSONObject), .malformedToken(.emptySignature), .malformedToken(.invalidHeaderField),
            .malformedToken(.invalidClaim), .tokenTooLarge, .unsupportedAlgorithm, .missingKeyID, .criticalHeaderNotSupported,
            .graphToken, .unknownSigningKey, .signingKeyTooSmall, .algorithmKeyMismatch, .badSignature,
            .missingClaim(.exp), .missingClaim(.iss), .missingClaim(.aud), .missingClaim(.tid), .missingClaim(.oid),
            .missingClaim(.sub), .expired, .notYetValid, .invalidIssuer, .invalidAudience, .tenantNotAllowed,
            .tenantIssuerMismatch, .delegatedTokenNotAccepted, .appOnlyTokenNotAccepted, .signingKeysUnavailable,
        ]
        for e in all {
            let d = e.errorDescription
            XCTAssertFalse(d.contains("scope="), "\(e)")
            XCTAssertFalse(d.contains("\""), "\(e)")
            XCTAssertFalse(d.contains("\\"), "\(e)")
            XCTAssertFalse(d.contains(token) || token.split(separator: ".").contains { d.contains($0) }, "\(e)")
            XCTAssertTrue(d.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }, "\(e)")
            if e == .signingKeysUnavailable {
                XCTAssertNil(e.errorCode)
                XCTAssertEqual(e.httpStatus, 503)
            } else {
                XCTAssertEqual(e.errorCode, "invalid_token")
                XCTAssertEqual(e.httpStatus, 401)
            }
        }
    }

    func testConcurrentVerification() {
        let tokens = (0..<16).map { i -> String in
            var c = Fixture.claims(now: now)
            c["uti"] = .string("t\(i)")
            return Fixture.token(claims: c)
        }
        let failures = NSLock()
        var failed = 0
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<50 {
                let t = tokens[(worker + round) % tokens.count]
                if (try? verifier.verify(t)) == nil { failures.lock(); failed += 1; failures.unlock() }
            }
        }
        XCTAssertEqual(failed, 0)
    }
}

/// PS256 end to end: a key published with alg PS256 serves PS256 tokens only.
final class PS256VerifierTests: XCTestCase {
    func signPS256(_ key: DevSigningKey, _ message: [UInt8]) throws -> [UInt8] {
        try key.privateKey.sign(message, padding: .pss)
    }

    func testPS256KeyIsBoundToPS256() throws {
        let clock = TestClock<Int64>()
        var jwk = Fixture.key.publicJWK
        jwk["alg"] = "PS256"
        let v = TokenVerifier(policy: Fixture.policy(), keys: StaticKeyProvider(keys: [try VerificationKey(jwk: JWK(jwk)!)]),
                              allowedAlgorithms: [.rs256, .ps256], clock: clock.closure)
        let input = Base64.encodeURL(JSONWriter.serialize(.object(Fixture.header(alg: "PS256"))))
            + "." + Base64.encodeURL(JSONWriter.serialize(.object(Fixture.claims(now: clock.now))))
        let token = input + "." + Base64.encodeURL(try signPS256(Fixture.key, Array(input.utf8)))
        XCTAssertEqual(try v.verify(token).tenantId, Fixture.tenantA)
        // The same key material as an RS256 token: refused, the key is PS256-only.
        XCTAssertRefused(v, Fixture.token(claims: Fixture.claims(now: clock.now)), .algorithmKeyMismatch)
        // And a policy that allows only RS256 refuses the PS256 token outright.
        let rsOnly = TokenVerifier(policy: Fixture.policy(), keys: StaticKeyProvider(keys: [try VerificationKey(jwk: JWK(jwk)!)]),
                                   clock: clock.closure)
        XCTAssertRefused(rsOnly, token, .unsupportedAlgorithm)
    }
}
