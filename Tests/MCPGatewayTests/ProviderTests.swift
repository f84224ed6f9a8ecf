import EntraAuth
import Foundation
import GatewayStore
import GatewaySupport
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import MCPGateway

/// `auth.providers`: an instance trusting Entra (development mode here) and a Google-shaped
/// OpenID issuer served by a fake on 127.0.0.1, through the whole request path.
final class ProviderTests: XCTestCase {
    var issuer: ScriptedHTTPServer!
    let googleKey = Fixture.otherKey
    let client = "1234567890-abc.apps.googleusercontent.com"
    /// The same raw id as the fixture's Entra user: the two must never be taken for one another.
    let sharedRawId = "11111111-1111-4111-8111-111111111111"
    var issuerURL: String { issuer.baseURL + "/google" }

    override func setUpWithError() throws {
        issuer = try ScriptedHTTPServer()
        issuer.set("/google/.well-known/openid-configuration",
                   body: JSONWriter.string(["issuer": .string(issuerURL), "jwks_uri": .string(issuer.baseURL + "/google/certs")]))
        issuer.set("/google/certs", body: JSONWriter.string(["keys": [.object(googleKey.publicJWK)]]))
    }

    override func tearDown() { issuer.stop() }

    func fixture(extra: [String: JSONValue] = [:], providers: JSONValue? = nil) throws -> GatewayFixture {
        var root: [String: JSONValue] = ["tenants": [.init(stringLiteral: GatewayFixture.tenant): ["name": "Contoso", "email_domains": ["contoso.com"]]]]
        for (k, v) in extra { root[k] = v }
        let list = providers ?? [["type": "entra"],
                                 ["type": "oidc", "name": "google", "issuer": .string(issuerURL), "audiences": .array([.string(client)]),
                                  "authorized_party": .string(client)]]
        return try GatewayFixture(extra: root, auth: ["providers": list, "allow_insecure_http_for_testing": true])
    }

    func googleToken(sub: String? = nil, email: String = "ada@contoso.com", verified: Bool = true, iss: String? = nil) throws -> String {
        let now = Int(Date().timeIntervalSince1970)
        let claims = JSONObject(["iss": .string(iss ?? issuerURL), "aud": .string(client), "azp": .string(client),
                                 "sub": .string(sub ?? sharedRawId), "email": .string(email), "email_verified": .bool(verified),
                                 "iat": .integer(now), "exp": .integer(now + 600)])
        return try DevTokenMinter(key: googleKey).sign(header: Fixture.header(kid: googleKey.keyID), claims: claims)
    }

    func whoami(_ f: GatewayFixture, _ token: String) -> HTTPResponse {
        f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]]), token: token)
    }

    func testEachProvidersUserIsServedWithAQualifiedId() throws {
        let f = try fixture()
        let google = whoami(f, try googleToken())
        XCTAssertEqual(google.status, 200)
        let text = google.json?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue ?? ""
        XCTAssertTrue(text.contains("oidc:google:\(sharedRawId)"), text)
        XCTAssertTrue(text.contains("\"provider\":\"oidc:google\""), text)
        let entra = whoami(f, try f.token())
        XCTAssertEqual(entra.status, 200)
        XCTAssertTrue((entra.json?["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue ?? "").contains("\"provider\":\"entra\""))
    }

    func testSameRawIdFromTwoProvidersIsKeptApartInRateLimitsAndAudit() throws {
        let f = try fixture(extra: ["rate_limits": ["user_per_minute": 1, "user_burst": 1, "tenant_per_minute": 0]])
        let ping = GatewayFixture.legacyBody("ping")
        XCTAssertEqual(f.post(ping, token: try f.token()).status, 200)
        XCTAssertEqual(f.post(ping, token: try f.token()).status, 429)
        // Google's user with the very same raw id has a bucket of its own.
        XCTAssertEqual(f.post(ping, token: try googleToken()).status, 200)
        XCTAssertEqual(f.post(ping, token: try googleToken()).status, 429)
        let users = try f.instance.stores.audit.audit(since: 0, tenant: nil, limit: 100).map(\.user)
        XCTAssertEqual(users, [sharedRawId, sharedRawId, "oidc:google:\(sharedRawId)", "oidc:google:\(sharedRawId)"])
    }

    func testUnknownIssuerAndUnverifiedEmailAreRefusedWithTheUsualChallenge() throws {
        let f = try fixture()
        let unknown = whoami(f, try googleToken(iss: issuer.baseURL + "/elsewhere"))
        XCTAssertEqual(unknown.status, 401)
        let challenge = try XCTUnwrap(unknown.header("WWW-Authenticate"))
        XCTAssertTrue(challenge.contains(#"resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp""#))
        XCTAssertTrue(challenge.contains("The access token was issued by an issuer this API does not trust."), challenge)
        let unverified = whoami(f, try googleToken(verified: false))
        XCTAssertEqual(unverified.status, 401)
        XCTAssertTrue(unverified.header("WWW-Authenticate")?.contains("email is not verified") == true)
    }

    func testWithoutEntraInTheListEntraTokensAreUnknownIssuers() throws {
        let f = try fixture(providers: [["type": "oidc", "name": "google", "issuer": .string(issuerURL), "audiences": .array([.string(client)])]])
        let r = whoami(f, try f.token())
        XCTAssertEqual(r.status, 401)
        XCTAssertTrue(r.header("WWW-Authenticate")?.contains("issuer this API does not trust") == true)
        XCTAssertEqual(whoami(f, try googleToken()).status, 200)
    }

    func testMetadataListsEveryProvidersAuthorizationServer() throws {
        let f = try fixture()
        let doc = try XCTUnwrap(f.gateway.respond(to: HTTPRequest(method: "GET", path: "/.well-known/oauth-protected-resource/mcp")).json)
        XCTAssertEqual(doc["authorization_servers"], .array([.string("\(DevTokenMinter.issuerAuthority)/\(GatewayFixture.tenant)/v2.0"),
                                                            .string(issuerURL)]))
    }

    func testProviderConfigurationMistakesAreNamed() throws {
        func problems(_ list: JSONValue) -> String {
            do { _ = try fixture(providers: list); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(problems([["type": "saml"]]).contains("auth.providers[0].type: must be entra, oidc, google_access_token, github or api_key"))
        XCTAssertTrue(problems([["type": "entra"], ["type": "entra"]]).contains("auth.providers[1]: entra is listed twice"))
        XCTAssertTrue(problems([["type": "oidc", "name": "x"]]).contains("auth.providers[0].issuer: is required"))
        XCTAssertTrue(problems([["type": "oidc", "name": "g", "issuer": .string(issuerURL), "audiences": ["a"], "algorithms": ["HS256"]]])
            .contains("HS256 is not one of RS256, PS256, ES256"))
        XCTAssertTrue(problems([]).contains("auth.providers: must be a non-empty list"))
    }
}

extension ProviderTests {
    func testGitHubWithoutAnyTenantIsAConfigurationError() throws {
        do {
            _ = try fixture(providers: [["type": "github", "organizations": ["acme": ["roles": ["MCP.User"]]]]])
            XCTFail("accepted a GitHub provider that cannot place its users in a tenant")
        } catch {
            XCTAssertTrue("\(error)".contains("auth.providers[0].tenant: name the tenant of GitHub users"), "\(error)")
        }
        do {
            _ = try fixture(providers: [["type": "github", "tenant": .string(GatewayFixture.tenant), "organizations": ["acme": ["rolez": []]]]])
            XCTFail("accepted a misspelt key")
        } catch {
            XCTAssertTrue("\(error)".contains("auth.providers[0].organizations.acme.rolez: unknown setting"), "\(error)")
        }
    }
}

extension ProviderTests {
    func testABlockOnOneProvidersUserLeavesTheOtherProvidersSameRawIdAlone() throws {
        let f = try fixture()
        try f.instance.stores.blocks.addBlock(Block(kind: .user, id: "oidc:google:\(sharedRawId)", until: nil, reason: "test"))
        let ping = GatewayFixture.legacyBody("ping")
        XCTAssertEqual(f.post(ping, token: try googleToken()).status, 403)
        XCTAssertEqual(f.post(ping, token: try f.token()).status, 200)
        XCTAssertTrue(Principal.isQualifiedUserID("oidc:google:\(sharedRawId)"))
        XCTAssertTrue(Principal.isQualifiedUserID("github:583231"))
        XCTAssertFalse(Principal.isQualifiedUserID("oidc:google:"))
        XCTAssertFalse(Principal.isQualifiedUserID("github:"))
        XCTAssertFalse(Principal.isQualifiedUserID("saml:x"))
        XCTAssertFalse(Principal.isQualifiedUserID("google:a b"))
    }
}
