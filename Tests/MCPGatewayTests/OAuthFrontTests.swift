import Foundation
import GatewaySupport
import XCTest
@testable import MCPGateway

/// The authorization front's small parts: strict form parsing, the signed consent cookie,
/// HTML escaping, resource comparison, PKCE verifier rules, Basic client ids.
final class OAuthFrontTests: XCTestCase {
    func testFormBodyDecodesAndRefusesWhatOAuthForbids() throws {
        let f = try FormBody("grant_type=authorization_code&code=a%2Bb+c&redirect_uri=http%3A%2F%2F127.0.0.1%3A5%2Fcb&empty=")
        XCTAssertEqual(f["grant_type"], "authorization_code")
        XCTAssertEqual(f["code"], "a+b c")
        XCTAssertEqual(f["redirect_uri"], "http://127.0.0.1:5/cb")
        XCTAssertEqual(f["empty"], "")
        XCTAssertNil(f.value("empty"))
        XCTAssertThrowsError(try FormBody("code=1&code=2")) { XCTAssertEqual($0 as? FormBody.Problem, .repeated("code")) }
        XCTAssertThrowsError(try FormBody("code=%4"))
        XCTAssertThrowsError(try FormBody("code=%zz"))
        XCTAssertThrowsError(try FormBody("code=%FF"), "not UTF-8")
        XCTAssertThrowsError(try FormBody("state=a%0Ab"), "a control character would forge log lines")
        XCTAssertThrowsError(try FormBody(Substring((0..<100).map { "p\($0)=1" }.joined(separator: "&")))) {
            XCTAssertEqual($0 as? FormBody.Problem, .tooLarge)
        }
        XCTAssertThrowsError(try FormBody(body: [0x61, 0x3D, 0xC3]), "a body that is not UTF-8")
    }

    func testConsentCookieIsSignedAndCoversOnlyItsClients() throws {
        let dir = NSTemporaryDirectory() + "oauth-front-" + UUID().uuidString
        try StateDirectory.ensure(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let secrets = try FrontSecrets(stateDirectory: dir)
        let now = 1_800_000_000.0
        let cookie = ConsentCookie().adding(clientId: "mcpc_a", redirectURI: "https://claude.ai/cb", until: Int(now) + 60)
        let header = cookie.setCookie(secrets: secrets, maxAgeSeconds: 60)
        XCTAssertTrue(header.hasPrefix("__Host-mcp_consent="))
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] { XCTAssertTrue(header.contains(attribute), attribute) }
        let value = String(header.split(separator: ";")[0])
        let read = ConsentCookie.read(cookieHeader: "other=1; " + value, secrets: secrets, now: now)
        XCTAssertTrue(read.covers(clientId: "mcpc_a", redirectURI: "https://claude.ai/cb"))
        XCTAssertFalse(read.covers(clientId: "mcpc_b", redirectURI: "https://claude.ai/cb"), "another client is not covered")
        XCTAssertFalse(read.covers(clientId: "mcpc_a", redirectURI: "https://evil.example/cb"), "nor another redirect URI")
        XCTAssertFalse(ConsentCookie.read(cookieHeader: value, secrets: secrets, now: now + 61)
            .covers(clientId: "mcpc_a", redirectURI: "https://claude.ai/cb"), "entries expire")
        // Changing the body breaks the signature: the whole cookie is ignored.
        let forged = value.replacingOccurrences(of: "~", with: "0~")
        XCTAssertFalse(ConsentCookie.read(cookieHeader: forged, secrets: secrets, now: now).covers(clientId: "mcpc_a", redirectURI: "https://claude.ai/cb"))
        // Another installation's key does not verify it either.
        let otherDir = dir + "-other"
        try StateDirectory.ensure(otherDir)
        defer { try? FileManager.default.removeItem(atPath: otherDir) }
        XCTAssertFalse(ConsentCookie.read(cookieHeader: value, secrets: try FrontSecrets(stateDirectory: otherDir), now: now)
            .covers(clientId: "mcpc_a", redirectURI: "https://claude.ai/cb"))
    }

    func testSecretsSealToTheirRowAndSignByPurpose() throws {
        let dir = NSTemporaryDirectory() + "oauth-secrets-" + UUID().uuidString
        try StateDirectory.ensure(dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try FrontSecrets(stateDirectory: dir)
        let sealed = try s.seal("entra-refresh-token", boundTo: "grant:1")
        XCTAssertFalse(String(decoding: sealed, as: UTF8.self).contains("entra-refresh-token"))
        XCTAssertEqual(try s.unseal(sealed, boundTo: "grant:1"), "entra-refresh-token")
        XCTAssertThrowsError(try s.unseal(sealed, boundTo: "grant:2"), "a sealed token moved to another row does not open")
        let tag = s.sign("consent-csrf", "abc")
        XCTAssertTrue(s.verify("consent-csrf", "abc", tag: tag))
        XCTAssertFalse(s.verify("consent-cookie", "abc", tag: tag), "a CSRF token does not pass as a cookie signature")
        XCTAssertFalse(s.verify("consent-csrf", "abd", tag: tag))
        // Every process of the site reads the same key.
        XCTAssertTrue(try FrontSecrets(stateDirectory: dir).verify("consent-csrf", "abc", tag: tag))
    }

    func testConsentPageEscapesWhatClientsChose() {
        let page = ConsentPage.render(.init(serverName: "Contoso", clientName: "<script>alert(1)</script>", clientId: "mcpc_x",
                                            redirectURI: "https://claude.ai/api/mcp/auth_callback?a=1&b=\"2\"", redirectHost: "claude.ai",
                                            scopes: ["api://x/mcp.tools"], formAction: "/oauth/consent", requestId: "r", csrf: "c",
                                            clientIsSelfDescribed: true))
        let html = String(decoding: page.body, as: UTF8.self)
        XCTAssertFalse(html.contains("<script>"))
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("a=1&amp;b=&quot;2&quot;"))
        XCTAssertEqual(page.header("X-Frame-Options"), "DENY")
        XCTAssertTrue(page.header("Content-Security-Policy")?.contains("frame-ancestors 'none'") == true)
        XCTAssertFalse(html.contains("<script"), "no script at all, and no external asset")
        XCTAssertFalse(html.contains("src="))
    }

    func testResourcesCompareAsURIsAndVerifiersFollowRFC7636() {
        XCTAssertTrue(AuthorizeEndpoint.sameResource("HTTPS://MCP.Example.com/mcp/", "https://mcp.example.com/mcp"))
        XCTAssertFalse(AuthorizeEndpoint.sameResource("https://mcp.example.com/MCP", "https://mcp.example.com/mcp"), "paths are case-sensitive")
        XCTAssertFalse(AuthorizeEndpoint.sameResource("https://mcp.example.com/mcp?kb=1", "https://mcp.example.com/mcp"))
        XCTAssertFalse(AuthorizeEndpoint.sameResource("https://evil.example/mcp", "https://mcp.example.com/mcp"))
        XCTAssertEqual(AuthorizeEndpoint.host(of: "https://claude.ai/api/mcp/auth_callback"), "claude.ai")
        XCTAssertEqual(AuthorizeEndpoint.host(of: "http://127.0.0.1:33418/callback?x=1"), "127.0.0.1:33418")
        XCTAssertTrue(TokenEndpoint.isVerifier(String(repeating: "a", count: 43)))
        XCTAssertTrue(TokenEndpoint.isVerifier(String(repeating: "a-._~", count: 25)))
        XCTAssertFalse(TokenEndpoint.isVerifier(String(repeating: "a", count: 42)))
        XCTAssertFalse(TokenEndpoint.isVerifier(String(repeating: "a", count: 129)))
        XCTAssertFalse(TokenEndpoint.isVerifier(String(repeating: "a", count: 42) + "+"))
        // RFC 7636 appendix B.
        XCTAssertEqual(FrontRandom.challenge(of: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    }

    func testBasicClientIdIsFormDecoded() {
        let header = "Basic " + Data("mcpc_a%3Ab:secret".utf8).base64EncodedString()
        XCTAssertEqual(BasicCredentials(header: header)?.clientId, "mcpc_a:b")
        XCTAssertNil(BasicCredentials(header: "Bearer x"))
        XCTAssertNil(BasicCredentials(header: "Basic !!!"))
    }

    func testStableIdsAreVersion8GUIDs() {
        let id = EntraSetup.stableId("api://x/mcp.tools")
        XCTAssertEqual(id, EntraSetup.stableId("api://x/mcp.tools"))
        XCTAssertNotEqual(id, EntraSetup.stableId("api://x/other"))
        XCTAssertNotNil(id.range(of: "^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", options: .regularExpression), id)
    }
}
