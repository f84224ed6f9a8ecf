import Foundation
import MCPGatewayTesting
import MCPJSON
import UpstreamHTTP
import XCTest
@testable import EntraAuth

/// Generic OpenID issuers: a Google-shaped issuer (no trailing slash, azp), an Auth0-shaped one
/// (issuer ends with "/", `permissions`) and a Keycloak realm, each with discovery and JWKS
/// served by a fake on 127.0.0.1, verified through the same key cache as Entra.
final class OIDCProviderTests: XCTestCase {
    var server: ScriptedHTTPServer!
    var stateDir = ""
    var clock = TestClock<Int64>()
    let googleClient = "1234567890-abc.apps.googleusercontent.com"
    let googleKey = Fixture.key, auth0Key = Fixture.otherKey
    var google: String { server.baseURL + "/google" }
    var auth0: String { server.baseURL + "/auth0/" }
    var keycloak: String { server.baseURL + "/realms/acme" }

    override func setUpWithError() throws {
        server = try ScriptedHTTPServer()
        stateDir = makeTempDirectory() + "/state"
        clock = TestClock<Int64>()
        publish(issuer: google, at: "/google", keys: [googleKey])
        publish(issuer: auth0, at: "/auth0", keys: [auth0Key])
        publish(issuer: keycloak, at: "/realms/acme", keys: [googleKey])
    }

    override func tearDown() {
        server.stop()
        try? FileManager.default.removeItem(atPath: (stateDir as NSString).deletingLastPathComponent)
    }

    /// Discovery as the providers serve it: `{issuer}/.well-known/openid-configuration`.
    func publish(issuer: String, at path: String, keys: [DevSigningKey], documentIssuer: String? = nil) {
        server.set(path + "/.well-known/openid-configuration",
                   body: JSONWriter.string(["issuer": .string(documentIssuer ?? issuer), "jwks_uri": .string(server.baseURL + path + "/certs"),
                                            "id_token_signing_alg_values_supported": ["RS256"]]))
        server.set(path + "/certs", body: JSONWriter.string(["keys": .array(keys.map { .object($0.publicJWK) })]))
    }

    func configuration(name: String, issuer: String, audiences: [String]) -> OIDCConfiguration {
        var c = OIDCConfiguration(name: name, issuer: issuer, audiences: audiences, stateDirectory: stateDir)
        c.http.allowInsecureHTTPForTesting = true
        c.http.totalTimeoutMilliseconds = 3000
        c.jwksRefreshIntervalSeconds = 3600
        c.claims.emailDomains = ["contoso.com": Fixture.tenantA]
        c.claims.allowedTenants = [Fixture.tenantA]
        return c
    }

    func googleVerifier() throws -> TokenVerifier {
        var c = configuration(name: "google", issuer: google, audiences: [googleClient])
        c.authorizedParty = googleClient
        return try TokenVerifier(oidc: c, http: CurlHTTPFetcher(options: c.http), clock: clock.closure)
    }

    func auth0Verifier() throws -> TokenVerifier {
        var c = configuration(name: "auth0", issuer: auth0, audiences: ["https://mcp.example.com/api"])
        c.claims.rolesClaim = "permissions"
        c.claims.fixedTenant = Fixture.tenantA
        return try TokenVerifier(oidc: c, http: CurlHTTPFetcher(options: c.http), clock: clock.closure)
    }

    func googleClaims(sub: String = "110169484474386276334", email: String = "ada@contoso.com", verified: Bool = true) -> JSONObject {
        JSONObject(["iss": .string(google), "aud": .string(googleClient), "azp": .string(googleClient), "sub": .string(sub),
                    "email": .string(email), "email_verified": .bool(verified), "name": "Ada Lovelace",
                    "iat": .integer(Int(clock.now)), "exp": .integer(Int(clock.now + 3600))])
    }

    func signed(_ claims: JSONObject, by key: DevSigningKey, alg: String = "RS256") -> String {
        Fixture.token(header: Fixture.header(kid: key.keyID, alg: alg), claims: claims, signedBy: key)
    }

    // MARK: - accepted

    func testGoogleIDTokenMapsToQualifiedUserAndEmailDomainTenant() throws {
        let p = try googleVerifier().verify(signed(googleClaims(), by: googleKey))
        XCTAssertEqual(p.provider, "oidc:google")
        XCTAssertEqual(p.objectId, "oidc:google:110169484474386276334")
        XCTAssertEqual(p.subject, "110169484474386276334")
        XCTAssertEqual(p.tenantId, Fixture.tenantA)
        XCTAssertEqual(p.userPrincipalName, "ada@contoso.com")
        XCTAssertFalse(p.isAppOnly)
        XCTAssertFalse(p.isEntra)
        XCTAssertEqual(server.hits("/google/.well-known/openid-configuration"), 1)
    }

    func testAuth0PermissionsBecomeRoles() throws {
        var c = JSONObject(["iss": .string(auth0), "aud": ["https://mcp.example.com/api", .string(server.baseURL + "/auth0/userinfo")],
                            "sub": "auth0|5f7c8ec7c33c6c004bbafe82", "permissions": ["MCP.User", "read:reports"],
                            "scope": "openid read:reports", "exp": .integer(Int(clock.now + 600))])
        c["azp"] = "someclient"
        let p = try auth0Verifier().verify(signed(c, by: auth0Key))
        XCTAssertEqual(p.objectId, "oidc:auth0:auth0|5f7c8ec7c33c6c004bbafe82")
        XCTAssertEqual(p.roles, ["MCP.User", "read:reports"])
        XCTAssertEqual(p.scopes, ["openid", "read:reports"])
        XCTAssertEqual(p.tenantId, Fixture.tenantA)
    }

    func testKeycloakRealmRolesAndNamespacedClaimPaths() throws {
        var c = configuration(name: "keycloak", issuer: keycloak, audiences: ["mcp"])
        c.claims.rolesClaim = "realm_access.roles"
        c.claims.tenantClaim = "https://example.com/tenant"
        let verifier = try TokenVerifier(oidc: c, http: CurlHTTPFetcher(options: c.http), clock: clock.closure)
        let claims = JSONObject(["iss": .string(keycloak), "aud": ["mcp", "account"], "sub": "f:1234", "azp": "mcp-client",
                                 "realm_access": ["roles": ["MCP.Admin", "offline_access"]],
                                 "https://example.com/tenant": .string(Fixture.tenantA.uppercased()),
                                 "exp": .integer(Int(clock.now + 300))])
        let p = try verifier.verify(signed(claims, by: googleKey))
        XCTAssertEqual(p.roles, ["MCP.Admin", "offline_access"])
        XCTAssertEqual(p.tenantId, Fixture.tenantA)
        var other = claims
        other["https://example.com/tenant"] = .string(Fixture.tenantB)
        XCTAssertRefused(verifier, signed(other, by: googleKey), .tenantNotAllowed)
    }

    // MARK: - attacks, with exact answers

    func testGoogleIDTokenForAnotherClientsAudience() throws {
        var c = googleClaims()
        c["aud"] = "999-other.apps.googleusercontent.com"
        c["azp"] = "999-other.apps.googleusercontent.com"
        XCTAssertRefused(try googleVerifier(), signed(c, by: googleKey), .invalidAudience)
        var azpOnly = googleClaims()
        azpOnly["azp"] = "999-other.apps.googleusercontent.com"
        XCTAssertRefused(try googleVerifier(), signed(azpOnly, by: googleKey), .invalidAuthorizedParty)
    }

    func testTokenFromIssuerASignedWithIssuerBsKey() throws {
        // iss names Google, but Auth0's key signed it: Google's key set does not hold that key.
        XCTAssertRefused(try googleVerifier(), signed(googleClaims(), by: auth0Key), .unknownSigningKey)
    }

    func testAuth0IssuerWithoutTrailingSlashIsAnotherIssuer() throws {
        let c = JSONObject(["iss": .string(String(auth0.dropLast())), "aud": "https://mcp.example.com/api", "sub": "auth0|1",
                            "exp": .integer(Int(clock.now + 600))])
        XCTAssertRefused(try auth0Verifier(), signed(c, by: auth0Key), .invalidIssuer)
        // Through the router no provider has that exact issuer, so none is even asked.
        let router = ProviderRouter(issuers: [auth0: try auth0Verifier()], fallbackJWT: nil)
        var hit = false
        XCTAssertEqual(router.check(signed(c, by: auth0Key), cacheHit: &hit).failure, .invalidIssuer)
    }

    func testUnverifiedEmailNeverPlacesTheUserInAMappedTenant() throws {
        XCTAssertRefused(try googleVerifier(), signed(googleClaims(verified: false), by: googleKey), .emailNotVerified)
        XCTAssertRefused(try googleVerifier(), signed(googleClaims(email: "eve@elsewhere.org"), by: googleKey), .noTenantForUser)
    }

    func testSymmetricAndUnsignedAlgorithmsAreNeverAccepted() throws {
        XCTAssertThrowsError(try {
            var c = configuration(name: "google", issuer: google, audiences: [googleClient])
            c.allowedAlgorithms = []
            try c.validate()
        }())
        let none = Fixture.b64(#"{"alg":"none","kid":"\#(googleKey.keyID)"}"#) + "." + Fixture.b64(JSONWriter.string(.object(googleClaims()))) + "."
        XCTAssertRefused(try googleVerifier(), none, .unsupportedAlgorithm)
        XCTAssertRefused(try googleVerifier(), signed(googleClaims(), by: googleKey, alg: "HS256"), .unsupportedAlgorithm)
    }

    func testExpiredWithinAndBeyondSkew() throws {
        var c = googleClaims()
        c["exp"] = .integer(Int(clock.now - 60))
        XCTAssertNoThrow(try googleVerifier().verify(signed(c, by: googleKey)))
        c["exp"] = .integer(Int(clock.now - 121))
        XCTAssertRefused(try googleVerifier(), signed(c, by: googleKey), .expired)
    }

    func testDiscoveryDocumentForAnotherIssuerSuppliesNoKeys() throws {
        publish(issuer: google, at: "/google", keys: [googleKey], documentIssuer: server.baseURL + "/evil")
        XCTAssertRefused(try googleVerifier(), signed(googleClaims(), by: googleKey), .signingKeysUnavailable)
    }

    func testRouterPicksTheProviderByExactIssuerAndFallsBackToEntra() throws {
        let entra = TokenVerifier(policy: Fixture.policy(), keys: StaticKeyProvider(keys: [try Fixture.key.verificationKey()]),
                                  clock: clock.closure)
        let router = ProviderRouter(issuers: [google: try googleVerifier(), auth0: try auth0Verifier()], fallbackJWT: entra)
        var hit = false
        XCTAssertEqual(try router.check(signed(googleClaims(), by: googleKey), cacheHit: &hit).get().provider, "oidc:google")
        let entraToken = Fixture.token(claims: Fixture.claims(now: clock.now))
        let p = try router.check(entraToken, cacheHit: &hit).get()
        XCTAssertEqual(p.provider, "entra")
        XCTAssertEqual(p.objectId, Fixture.oid)
        // An Entra-shaped token claiming Google's issuer goes to Google's verifier, which refuses it.
        var forged = Fixture.claims(now: clock.now)
        forged["iss"] = .string(google)
        XCTAssertEqual(router.check(Fixture.token(claims: forged), cacheHit: &hit).failure, .invalidAudience)
        XCTAssertEqual(router.check("not-a-token", cacheHit: &hit).failure, .malformedToken(.segmentCount))
    }
}

extension Result {
    var failure: Failure? { if case .failure(let e) = self { return e } else { return nil } }
}

extension OIDCProviderTests {
    func testIssuersDifferingByATrailingSlashNeverShareAKeyFile() throws {
        let claims = JSONObject(["iss": .string(auth0), "aud": "https://mcp.example.com/api", "sub": "auth0|1",
                                 "exp": .integer(Int(clock.now + 600))])
        // Auth0's issuer (with its "/") fetches and caches its keys first.
        XCTAssertNoThrow(try auth0Verifier().verify(signed(claims, by: auth0Key)))
        // Its twin without the "/" discovers at the same address, whose document names the other
        // issuer: it gets no keys, and must not borrow the file the first one wrote.
        var twin = configuration(name: "twin", issuer: String(auth0.dropLast()), audiences: ["https://mcp.example.com/api"])
        twin.claims.fixedTenant = Fixture.tenantA
        let twinVerifier = try TokenVerifier(oidc: twin, http: CurlHTTPFetcher(options: twin.http), clock: clock.closure)
        var forged = claims
        forged["iss"] = .string(twin.issuer)
        XCTAssertRefused(twinVerifier, signed(forged, by: auth0Key), .signingKeysUnavailable)
    }
}

extension OIDCProviderTests {
    func testAConfiguredTenantClaimThatIsMissingIsNotReplacedByTheEmailDomain() throws {
        var c = configuration(name: "keycloak", issuer: keycloak, audiences: ["mcp"])
        c.claims.tenantClaim = "https://example.com/tenant"
        let verifier = try TokenVerifier(oidc: c, http: CurlHTTPFetcher(options: c.http), clock: clock.closure)
        // A verified address in a mapped domain, but none of the tenant claim the operator named.
        let claims = JSONObject(["iss": .string(keycloak), "aud": "mcp", "sub": "f:5678", "email": "eve@contoso.com",
                                 "email_verified": true, "exp": .integer(Int(clock.now + 300))])
        XCTAssertRefused(verifier, signed(claims, by: googleKey), .noTenantForUser)
    }
}
