import EntraAuth
import Foundation
import GatewayStore
import GatewaySupport
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import MCPGateway

/// The edges of `auth.providers`: an instance that trusts no Entra at all, provider URLs that
/// must be TLS, and which key source a log line blames.
extension ProviderTests {
    var googleOnly: JSONValue {
        [["type": "oidc", "name": "google", "issuer": .string(issuerURL), "audiences": .array([.string(client)]), "authorized_party": .string(client)]]
    }

    func testAnInstanceWithoutEntraNeedsNoEntraSettings() throws {
        let f = try GatewayFixture(extra: ["tenants": [.init(stringLiteral: GatewayFixture.tenant): ["name": "Contoso", "email_domains": ["contoso.com"]]]],
                                   auth: ["providers": googleOnly, "allow_insecure_http_for_testing": true, "mode": "entra"],
                                   authWithout: ["client_id"])
        XCTAssertNil(f.instance.authenticator.verifier, "no Entra verifier is built when Entra is not listed")
        XCTAssertEqual(whoami(f, try googleToken()).status, 200)
        XCTAssertEqual(whoami(f, try f.token()).status, 401)
        XCTAssertNil(f.instance.operations.notReadyReason(), "readiness does not wait for Entra's keys")
    }

    func testWithoutEntraItsOnlyFeaturesAreConfigurationErrors() throws {
        let backends = BackendConfigTests.root(["chat": BackendConfigTests.backend()])
        do {
            _ = try GatewayFixture(extra: [
                "authorization": try XCTUnwrap(backends["authorization"]),
                "credential": ["client_id": "dddddddd-dddd-4ddd-8ddd-dddddddddddd", "client_secret_file": "/etc/mcp-fcgi/secret"],
                "powerbi": ["access_mode": "delegated"],
                "backends": ["chat": BackendConfigTests.backend()],
                "oauth": ["enabled": true],
            ], auth: ["providers": googleOnly, "allow_insecure_http_for_testing": true], authWithout: ["client_id"])
            XCTFail("accepted Entra-only features without Entra")
        } catch {
            let text = "\(error)"
            XCTAssertTrue(text.contains("oauth: signs users in with Entra, and auth.providers does not list {\"type\": \"entra\"}"), text)
            XCTAssertTrue(text.contains("powerbi.access_mode: delegated needs Entra users (On-Behalf-Of)"), text)
            XCTAssertTrue(text.contains("backends.chat.auth_mode: session needs Entra users (On-Behalf-Of)"), text)
            XCTAssertFalse(text.contains("auth.audiences"), text)
        }
        // With Entra listed, its settings are required as before.
        do {
            _ = try GatewayFixture(auth: ["providers": [["type": "entra"]]], authWithout: ["client_id"])
            XCTFail("accepted Entra without an audience")
        } catch {
            XCTAssertTrue("\(error)".contains("auth.audiences: at least one audience is required"), "\(error)")
        }
    }

    func testProviderURLsMustBeHTTPSUnlessTheTestingSwitchIsOn() throws {
        let list: JSONValue = [
            ["type": "oidc", "name": "google", "issuer": "http://accounts.example.test", "audiences": ["a"], "jwks_uri": "http://keys.example.test/certs"],
            ["type": "google_access_token", "client_id": "c", "tokeninfo_url": "http://tokeninfo.example.test/", "tenant": .string(GatewayFixture.tenant)],
            ["type": "github", "api_url": "http://api.github.example.test", "tenant": .string(GatewayFixture.tenant)],
        ]
        do {
            _ = try GatewayFixture(auth: ["providers": list])
            XCTFail("accepted plain http provider URLs")
        } catch {
            let text = "\(error)"
            let rule = "must be an https URL (plain http only with allow_insecure_http_for_testing)"
            for key in ["providers[0].issuer", "providers[0].jwks_uri", "providers[1].tokeninfo_url", "providers[2].api_url"] {
                XCTAssertTrue(text.contains("auth.\(key): \(rule)"), "\(key): \(text)")
            }
        }
    }

    func testKeysUnavailableNamesTheOIDCIssuerNotEntrasAuthority() throws {
        let lines = LoggedLines()
        Log.shared.redirect { bytes in lines.append(String(decoding: bytes, as: UTF8.self)) }
        defer { Log.shared.redirect(nil) }
        let f = try fixture()
        issuer.stop()
        XCTAssertEqual(whoami(f, try googleToken()).status, 503)
        let text = lines.text
        XCTAssertTrue(text.contains("token signing keys unavailable"), text)
        XCTAssertTrue(text.contains(issuerURL), text)
        XCTAssertFalse(text.contains("authority"), text)
    }
}

extension OpaqueProviderTests {
    func testGoogleTokenWithoutAUserIsTheTokensFaultNotGooglesTrouble() throws {
        var info = FakeOpaqueProviders.tokenInfo(sub: "1")
        info["sub"] = nil
        info["email"] = nil
        info["email_verified"] = nil
        info["scope"] = "https://www.googleapis.com/auth/drive.readonly"
        fake.set { fake.googleTokens["ya29.no-openid-scope"] = info }
        let failure = check(google(), "ya29.no-openid-scope").0.failure
        XCTAssertEqual(failure, .missingClaim(.sub))
        XCTAssertEqual(failure?.httpStatus, 401)
    }
}

/// What the log wrote while a test ran, from any thread.
final class LoggedLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines = ""
    func append(_ line: String) { lock.withLock { lines += line } }
    var text: String { lock.withLock { lines } }
}

extension ProviderTests {
    /// OpenID subjects are case-sensitive: `oidc:google:Ada` and `oidc:google:ada` are two users,
    /// in blocks, workspace mappings and backend sessions, while Entra GUIDs still fold case.
    func testQualifiedIdsDifferingOnlyByCaseNeverMeet() throws {
        let f = try fixture()
        try f.instance.stores.blocks.addBlock(Block(kind: .user, id: Principal.canonicalUserID("oidc:google:Ada"), until: nil, reason: "test"))
        let ping = GatewayFixture.legacyBody("ping")
        XCTAssertEqual(f.post(ping, token: try googleToken(sub: "Ada")).status, 403)
        XCTAssertEqual(f.post(ping, token: try googleToken(sub: "ada")).status, 200)
        let mapping = try WorkspaceMapping(tenant: GatewayFixture.tenant, kind: .user, principal: "oidc:google:Ada",
                                           workspace: "22222222-2222-4222-8222-222222222222")
        XCTAssertEqual(mapping.principal, "oidc:google:Ada")
        XCTAssertNotEqual(BackendSessionKey(instance: "i", tenant: GatewayFixture.tenant, user: "oidc:google:Ada", backend: "b"),
                          BackendSessionKey(instance: "i", tenant: GatewayFixture.tenant, user: "oidc:google:ada", backend: "b"))
        XCTAssertEqual(Principal.canonicalUserID("AAAAAAAA-1111-4111-8111-111111111111"), "aaaaaaaa-1111-4111-8111-111111111111")
    }
}

extension APIKeyTests {
    func testARoleNameWithASpaceIsRefusedRatherThanSplitIntoTwoRoles() throws {
        let f = try fixture()
        XCTAssertThrowsError(try makeKey(f, roles: ["Super Admin"])) { error in
            XCTAssertTrue("\(error)".contains("role 'Super Admin' must be one word"), "\(error)")
        }
        XCTAssertEqual(try XCTUnwrap(f.instance.stores.apiKeys).apiKeys().count, 0)
    }
}
