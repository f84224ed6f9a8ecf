import GatewaySupport
import EntraAuth
import Foundation
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import MCPGateway

/// The resource-server surface: challenges, metadata, scope checks, /me.
final class AuthenticationTests: XCTestCase {
    var f: GatewayFixture!

    override func setUpWithError() throws { f = try GatewayFixture(auth: ["required_scopes": ["mcp.tools"]]) }

    let ping = GatewayFixture.legacyBody("ping")

    func testMissingTokenChallengesWithMetadataAndScope() throws {
        let r = f.post(ping)
        XCTAssertEqual(r.status, 401)
        let challenge = try XCTUnwrap(r.header("WWW-Authenticate"))
        XCTAssertTrue(challenge.hasPrefix("Bearer "))
        XCTAssertTrue(challenge.contains(#"resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp""#))
        XCTAssertTrue(challenge.contains(#"scope="https://mcp.example.test/mcp/mcp.tools""#))
        XCTAssertFalse(challenge.contains("error="))
    }

    func testBadTokensSayWhyAndNeverEchoTheToken() throws {
        let expired = try f.minter.mint(tenantId: GatewayFixture.tenant, objectId: "11111111-1111-4111-8111-111111111111",
                                        audience: GatewayFixture.audience, scopes: ["mcp.tools"], ttl: -600)
        let wrongAudience = try f.minter.mint(tenantId: GatewayFixture.tenant, objectId: "11111111-1111-4111-8111-111111111111",
                                              audience: "api://someone-else", scopes: ["mcp.tools"])
        let cases: [(String, String)] = [
            (expired, "expired"), (wrongAudience, "audience"),
            (try f.token(tenant: GatewayFixture.otherTenant), "tenant"),
            ("abc.def", "malformed"),
        ]
        for (token, word) in cases {
            let r = f.post(ping, token: token)
            XCTAssertEqual(r.status, 401, word)
            let challenge = try XCTUnwrap(r.header("WWW-Authenticate"))
            XCTAssertTrue(challenge.contains(#"error="invalid_token""#), word)
            XCTAssertTrue(challenge.lowercased().contains(word), "\(word): \(challenge)")
            XCTAssertFalse(challenge.contains(token))
            XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains(token))
        }
        let basic = f.post(ping, headers: ["authorization": "Basic dXNlcjpwYXNz"])
        XCTAssertEqual(basic.status, 401)
    }

    func testMissingScopeIs403InsufficientScope() throws {
        let r = f.post(ping, token: try f.token(scopes: ["other.scope"]))
        XCTAssertEqual(r.status, 403)
        let challenge = try XCTUnwrap(r.header("WWW-Authenticate"))
        XCTAssertTrue(challenge.contains(#"error="insufficient_scope""#))
        XCTAssertTrue(challenge.contains(#"scope="mcp.tools""#))
    }

    func testGoodTokenReachesWhoamiAndMe() throws {
        let token = try f.token()
        let r = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "whoami"]), token: token)
        XCTAssertEqual(r.json?["result"]?["structuredContent"]?["tenantId"], .string(GatewayFixture.tenant))
        XCTAssertEqual(r.json?["result"]?["structuredContent"]?["authenticated"], true)
        var h = HTTPHeaders()
        h["authorization"] = "Bearer \(token)"
        let me = f.gateway.respond(to: HTTPRequest(method: "GET", path: "/me", headers: h))
        XCTAssertEqual(me.status, 200)
        XCTAssertEqual(me.json?["objectId"], "11111111-1111-4111-8111-111111111111")
        XCTAssertEqual(f.gateway.respond(to: HTTPRequest(method: "GET", path: "/me")).status, 401)
    }

    func testTokenInQueryStringIsIgnored() throws {
        let token = try f.token()
        let r = f.gateway.respond(to: HTTPRequest(method: "GET", path: "/me", query: "access_token=\(token)"))
        XCTAssertEqual(r.status, 401)
    }

    func testProtectedResourceMetadataAtBothPathsWithCORS() throws {
        for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
            let r = f.gateway.respond(to: HTTPRequest(method: "GET", path: path))
            XCTAssertEqual(r.status, 200, path)
            XCTAssertEqual(r.header("Access-Control-Allow-Origin"), "*")
            let doc = try XCTUnwrap(r.json)
            XCTAssertEqual(doc["resource"], "https://mcp.example.test/mcp")
            XCTAssertEqual(doc["bearer_methods_supported"], ["header"])
            XCTAssertEqual(doc["authorization_servers"]?.arrayValue?.count, 1)
            XCTAssertEqual(doc["scopes_supported"], ["https://mcp.example.test/mcp/mcp.tools"])
            XCTAssertNotNil(doc["resource_name"]?.stringValue)
        }
        let options = f.gateway.respond(to: HTTPRequest(method: "OPTIONS", path: "/.well-known/oauth-protected-resource"))
        XCTAssertEqual(options.status, 204)
        XCTAssertEqual(options.header("Access-Control-Allow-Methods"), "GET, OPTIONS")
    }
}

/// Entra mode with the key endpoint down and nothing cached: the caller is not at
/// fault, so the answer is 503 with Retry-After, not a 401 that would send the
/// client to fetch a new token.
final class KeysUnavailableTests: XCTestCase {
    func testNoKeysAndEndpointDownIs503() throws {
        let stateDir = NSTemporaryDirectory() + "mcp-fcgi-keys-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: stateDir) }
        let tenant = GatewayFixture.tenant
        let config = try ProcessConfig.parse([
            "server": ["public_url": "https://mcp.example.test/mcp"],
            "state_dir": .string(stateDir),
            "auth": ["tenant_id": .string(tenant), "client_id": "api://x", "authority": "http://127.0.0.1:9",
                     "jwks_uri": "http://127.0.0.1:9/keys", "allow_insecure_http_for_testing": true],
        ]).instances[0]
        let gateway = Gateway(instances: [try InstanceBuilder(config: config).build()])
        // A well-formed RS256 token for this issuer, signed by a key the gateway has never seen.
        let now = Int(Date().timeIntervalSince1970)
        let token = Fixture.token(header: ["alg": "RS256", "kid": "k1", "typ": "JWT"], claims: [
            "iss": .string("http://127.0.0.1:9/\(tenant)/v2.0"), "aud": "api://x", "tid": .string(tenant),
            "oid": "11111111-1111-4111-8111-111111111111", "sub": "s", "scp": "mcp.tools",
            "iat": .integer(now), "nbf": .integer(now), "exp": .integer(now + 600),
        ])
        var h = HTTPHeaders()
        h["authorization"] = "Bearer \(token)"
        let r = gateway.respond(to: HTTPRequest(method: "GET", path: "/me", headers: h))
        XCTAssertEqual(r.status, 503)
        XCTAssertNotNil(r.header("Retry-After"))
        XCTAssertNil(r.header("WWW-Authenticate"))
    }
}
