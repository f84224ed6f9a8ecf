import EntraAuth
import Foundation
import GatewayStore
import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway
@testable import UpstreamHTTP

/// The whole authorization front in-process: registration, authorize, consent, Entra's callback,
/// the token endpoint and refresh rotation, against a scripted Entra token endpoint whose access
/// tokens the instance's (development-mode) verifier accepts.
final class OAuthFlowTests: XCTestCase {
    static let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    static let scope = "api://mcp-fcgi-test/mcp.tools"
    static let redirect = "http://127.0.0.1:4711/callback"

    /// Entra's token endpoint as the front's confidential client sees it.
    final class ScriptedEntra: HTTPClient, @unchecked Sendable {
        let mint: () throws -> String
        private let lock = NSLock()
        private(set) var forms: [[String: String]] = []
        var refreshCount = 0
        init(mint: @escaping () throws -> String) { self.mint = mint }

        func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
            let form = try FormBody(body: request.body).fields
            lock.withLock { forms.append(form) }
            switch form["grant_type"] {
            case "authorization_code" where form["code"] == "entra-code":
                return try answer(["access_token": .string(mint()), "refresh_token": "entra-rt-0", "expires_in": 3600])
            case "refresh_token" where form["refresh_token"]?.hasPrefix("entra-rt-") == true:
                let n = lock.withLock { refreshCount += 1; return refreshCount }
                return try answer(["access_token": .string(mint()), "refresh_token": .string("entra-rt-\(n)"), "expires_in": 3600])
            default:
                return UpstreamResponse(status: 400, body: JSONWriter.serialize(["error": "invalid_grant",
                                                                                 "error_description": "AADSTS54005: code already redeemed"]))
            }
        }

        private func answer(_ o: JSONValue) throws -> UpstreamResponse { UpstreamResponse(status: 200, body: JSONWriter.serialize(o)) }
    }

    var stateDir = ""
    var server: AuthorizationServer!
    var entra: ScriptedEntra!
    var store: OAuthStore!
    var now = 1_800_000_000.0

    override func setUpWithError() throws {
        stateDir = NSTemporaryDirectory() + "oauth-flow-" + UUID().uuidString
        let config = try ProcessConfig.parse([
            "server": ["public_url": "https://mcp.example.test/mcp"],
            "state_dir": .string(stateDir),
            "auth": ["mode": "development", "tenant_id": .string(Self.tenant), "client_id": "api://mcp-fcgi-test",
                     "scopes_supported": [.string(Self.scope)]],
        ]).instances[0]
        let instance = try InstanceBuilder(config: config).build()
        let minter = DevTokenMinter(key: try DevSigningKey.loadOrCreate(stateDirectory: stateDir))
        entra = ScriptedEntra {
            try minter.mint(tenantId: Self.tenant, objectId: "11111111-1111-4111-8111-111111111111", audience: "api://mcp-fcgi-test",
                            scopes: ["mcp.tools"])
        }
        var oauth = OAuthConfig()
        oauth.issuer = "https://mcp.example.test/"
        oauth.scopes = [Self.scope]
        oauth.refreshGraceSeconds = 30
        store = instance.stores.oauth
        let signIn = try EntraSignIn(clientId: "6f1c0c55-7a1d-4d0e-9b55-5f0e2d6e1a01", authority: "https://login.example.test",
                                     tenant: "organizations", credential: .secret(ClientSecret("not-a-real-secret")), http: entra)
        let front = FrontContext(config: config, oauth: oauth, store: store, limiter: instance.stores.rateLimiter,
                                 directory: ClientDirectory(config: oauth, store: store, http: entra),
                                 registration: ClientRegistration(config: oauth, store: store),
                                 signIn: signIn, verifier: try XCTUnwrap(instance.authenticator.verifier),
                                 secrets: try FrontSecrets(stateDirectory: stateDir), clock: { [unowned self] in self.now })
        server = AuthorizationServer(front: front)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: stateDir) }

    func send(_ method: String, _ pathAndQuery: String, form: [(String, String)]? = nil, json: JSONValue? = nil,
              headers: [String: String] = [:]) -> HTTPResponse {
        let parts = pathAndQuery.split(separator: "?", maxSplits: 1)
        var h = HTTPHeaders(headers)
        var body: [UInt8] = []
        if let form { h["content-type"] = "application/x-www-form-urlencoded"; body = Array(URLEncoding.form(form).utf8) }
        if let json { h["content-type"] = "application/json"; body = JSONWriter.serialize(json) }
        var exchange = Exchange(request: HTTPRequest(method: method, path: String(parts[0]), query: parts.count > 1 ? String(parts[1]) : "",
                                                     headers: h, body: body, remoteAddress: "127.0.0.1"),
                                requestId: "test", draw: 1, receivedAt: now)
        return server.respond(&exchange) ?? HTTPResponse(status: 599)
    }

    /// The query parameters of a redirect's Location.
    func location(_ r: HTTPResponse) throws -> (base: String, query: [String: String]) {
        let loc = try XCTUnwrap(r.header("Location"), "a redirect")
        let parts = loc.split(separator: "?", maxSplits: 1)
        return (String(parts[0]), parts.count > 1 ? try FormBody(parts[1]).fields : [:])
    }

    /// The cookie the consent page binds its form to.
    func browserCookie(_ page: HTTPResponse) throws -> String {
        let set = try XCTUnwrap(page.headers.first { $0.0 == "Set-Cookie" && $0.1.hasPrefix(ConsentEndpoint.browserCookie) }?.1)
        return String(set.split(separator: ";")[0])
    }

    func hidden(_ name: String, in page: HTTPResponse) throws -> String {
        let html = String(decoding: page.body, as: UTF8.self)
        let marker = "name=\"\(name)\" value=\""
        let start = try XCTUnwrap(html.range(of: marker)).upperBound
        return String(html[start...].prefix { $0 != "\"" })
    }

    func register() throws -> String {
        let r = send("POST", "/oauth/register", json: ["redirect_uris": [.string(Self.redirect)], "client_name": "Test client",
                                                       "token_endpoint_auth_method": "none", "application_type": "native",
                                                       "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]])
        XCTAssertEqual(r.status, 201, String(decoding: r.body, as: UTF8.self))
        return try XCTUnwrap(r.json?["client_id"]?.stringValue)
    }

    let verifier = String(repeating: "v", count: 64)
    var challenge: String { FrontRandom.challenge(of: verifier) }

    func authorizeQuery(_ clientId: String, redirect: String = OAuthFlowTests.redirect, extra: [(String, String)] = []) -> String {
        "/oauth/authorize?" + URLEncoding.form([("response_type", "code"), ("client_id", clientId), ("redirect_uri", redirect),
                                                ("state", "client-state"), ("code_challenge", challenge),
                                                ("code_challenge_method", "S256"), ("scope", Self.scope),
                                                ("resource", "https://mcp.example.test/mcp")] + extra)
    }

    /// Registration through consent and Entra to our code; returns the code and the consent cookie.
    func signIn(_ clientId: String) throws -> (code: String, cookie: String) {
        let page = send("GET", authorizeQuery(clientId))
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(String(decoding: page.body, as: UTF8.self).contains("127.0.0.1:4711"), "the redirect host is shown")
        let toEntra = send("POST", "/oauth/consent", form: [("request", try hidden("request", in: page)),
                                                            ("csrf", try hidden("csrf", in: page)), ("decision", "allow")],
                           headers: ["cookie": try browserCookie(page)])
        XCTAssertEqual(toEntra.status, 302)
        let cookie = try XCTUnwrap(toEntra.header("Set-Cookie"))
        let entraLeg = try location(toEntra)
        XCTAssertEqual(entraLeg.base, "https://login.example.test/organizations/oauth2/v2.0/authorize")
        XCTAssertNil(entraLeg.query["resource"], "Entra refuses resource: it is never sent")
        XCTAssertEqual(entraLeg.query["redirect_uri"], "https://mcp.example.test/oauth/callback")
        XCTAssertEqual(entraLeg.query["code_challenge_method"], "S256")
        XCTAssertEqual(entraLeg.query["scope"], "\(Self.scope) offline_access openid")
        let back = send("GET", "/oauth/callback?" + URLEncoding.form([("code", "entra-code"), ("state", try XCTUnwrap(entraLeg.query["state"]))]))
        XCTAssertEqual(back.status, 302, String(decoding: back.body, as: UTF8.self))
        let toClient = try location(back)
        XCTAssertEqual(toClient.base, Self.redirect)
        XCTAssertEqual(toClient.query["state"], "client-state")
        XCTAssertEqual(toClient.query["iss"], "https://mcp.example.test/")
        // Entra's code was redeemed with our own verifier, not the client's.
        let redemption = try XCTUnwrap(entra.forms.last)
        XCTAssertNotEqual(redemption["code_verifier"], verifier)
        XCTAssertEqual(FrontRandom.challenge(of: try XCTUnwrap(redemption["code_verifier"])), entraLeg.query["code_challenge"])
        return (try XCTUnwrap(toClient.query["code"]), String(cookie.split(separator: ";")[0]))
    }

    func redeem(_ clientId: String, _ code: String, verifier: String? = nil) -> HTTPResponse {
        send("POST", "/oauth/token", form: [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", Self.redirect),
                                            ("client_id", clientId), ("code_verifier", verifier ?? self.verifier),
                                            ("resource", "https://mcp.example.test/mcp")])
    }

    func refresh(_ clientId: String, _ token: String) -> HTTPResponse {
        send("POST", "/oauth/token", form: [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", clientId)])
    }

    func testTheWholeFlowAndRefreshRotation() throws {
        let clientId = try register()
        let (code, cookie) = try signIn(clientId)
        let tokens = redeem(clientId, code)
        XCTAssertEqual(tokens.status, 200, String(decoding: tokens.body, as: UTF8.self))
        let access = try XCTUnwrap(tokens.json?["access_token"]?.stringValue)
        XCTAssertTrue(instanceAccepts(access), "the client gets Entra's token for our API")
        let refresh1 = try XCTUnwrap(tokens.json?["refresh_token"]?.stringValue)
        XCTAssertTrue(refresh1.hasPrefix("mcpr_"))
        XCTAssertFalse(String(decoding: tokens.body, as: UTF8.self).contains("entra-rt"), "Entra's refresh token never leaves")

        let second = refresh(clientId, refresh1)
        XCTAssertEqual(second.status, 200, String(decoding: second.body, as: UTF8.self))
        let refresh2 = try XCTUnwrap(second.json?["refresh_token"]?.stringValue)
        XCTAssertNotEqual(refresh1, refresh2, "rotated on every use")
        XCTAssertEqual(entra.forms.last?["refresh_token"], "entra-rt-0", "the sealed Entra token was used")
        // A concurrent use of the previous token within the grace window still works...
        now += 10
        XCTAssertEqual(refresh(clientId, refresh1).status, 200)
        // ...after it, its reuse revokes the whole grant, the current token included.
        now += 60
        let replay = refresh(clientId, refresh1)
        XCTAssertEqual(replay.status, 400)
        XCTAssertEqual(replay.json?["error"], "invalid_grant")
        XCTAssertEqual(refresh(clientId, refresh2).status, 400, "the grant is gone")

        // The browser's consent is remembered for this client: straight on to Entra.
        let again = send("GET", authorizeQuery(clientId), headers: ["cookie": cookie])
        XCTAssertEqual(again.status, 302)
        XCTAssertTrue(try location(again).base.hasSuffix("/oauth2/v2.0/authorize"))
    }

    func testCodesAreSingleUseBoundToTheClientAndItsVerifier() throws {
        let clientId = try register()
        let other = try register()
        var (code, _) = try signIn(clientId)
        XCTAssertEqual(redeem(clientId, code, verifier: String(repeating: "w", count: 64)).json?["error"], "invalid_grant", "wrong verifier")
        (code, _) = try signIn(clientId)
        XCTAssertEqual(redeem(other, code).json?["error"], "invalid_grant", "another client's code")
        (code, _) = try signIn(clientId)
        let first = redeem(clientId, code)
        XCTAssertEqual(first.status, 200)
        let refreshToken = try XCTUnwrap(first.json?["refresh_token"]?.stringValue)
        let reuse = redeem(clientId, code)
        XCTAssertEqual(reuse.json?["error"], "invalid_grant")
        XCTAssertEqual(refresh(clientId, refreshToken).status, 400, "the grant the reused code produced is revoked")
    }

    func testNothingIsRedirectedBeforeTheClientAndRedirectAreTrusted() throws {
        let clientId = try register()
        for uri in ["http://127.0.0.1:4711/callback/extra", "http://127.0.0.1:4711/callback?x=1", "https://evil.example/callback"] {
            let r = send("GET", authorizeQuery(clientId, redirect: uri))
            XCTAssertEqual(r.status, 400, uri)
            XCTAssertNil(r.header("Location"), "no open redirector: \(uri)")
        }
        XCTAssertNil(send("GET", authorizeQuery("mcpc_unknown")).header("Location"))
        // A loopback redirect may use any port (RFC 8252).
        XCTAssertEqual(send("GET", authorizeQuery(clientId, redirect: "http://127.0.0.1:5999/callback")).status, 200)
        // After that, errors go back to the client with its state and our iss.
        let plain = send("GET", authorizeQuery(clientId, extra: []).replacingOccurrences(of: "code_challenge_method=S256", with: "code_challenge_method=plain"))
        XCTAssertEqual(try location(plain).query["error"], "invalid_request")
        XCTAssertEqual(try location(plain).query["iss"], "https://mcp.example.test/")
        let badScope = send("GET", authorizeQuery(clientId).replacingOccurrences(of: "mcp.tools", with: "admin.everything"))
        XCTAssertEqual(try location(badScope).query["error"], "invalid_scope")
        let badResource = send("GET", authorizeQuery(clientId).replacingOccurrences(of: "mcp.example.test%2Fmcp", with: "evil.example%2Fmcp"))
        XCTAssertEqual(try location(badResource).query["error"], "invalid_target")
    }

    func testConsentNeedsItsCSRFTokenAndDenyGoesBack() throws {
        let clientId = try register()
        let page = send("GET", authorizeQuery(clientId))
        let request = try hidden("request", in: page), cookie = try browserCookie(page)
        XCTAssertEqual(send("POST", "/oauth/consent", form: [("request", request), ("decision", "allow")],
                            headers: ["cookie": cookie]).status, 403)
        XCTAssertEqual(send("POST", "/oauth/consent", form: [("request", request), ("csrf", "00"), ("decision", "allow")],
                            headers: ["cookie": cookie]).status, 403)
        // The page's own form, posted from another browser (one that was not shown the page): refused.
        XCTAssertEqual(send("POST", "/oauth/consent", form: [("request", request), ("csrf", try hidden("csrf", in: page)), ("decision", "allow")]).status, 403)
        let otherBrowser = try browserCookie(send("GET", authorizeQuery(clientId)))
        XCTAssertEqual(send("POST", "/oauth/consent", form: [("request", request), ("csrf", try hidden("csrf", in: page)), ("decision", "allow")],
                            headers: ["cookie": otherBrowser]).status, 403)
        let deny = send("POST", "/oauth/consent", form: [("request", request), ("csrf", try hidden("csrf", in: page)), ("decision", "deny")],
                        headers: ["cookie": cookie])
        XCTAssertEqual(try location(deny).query["error"], "access_denied")
        XCTAssertEqual(try location(deny).query["state"], "client-state")
    }

    func testMetadataNamesEveryEndpointAndPKCE() throws {
        let r = send("GET", "/.well-known/oauth-authorization-server")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json?["issuer"], "https://mcp.example.test/")
        XCTAssertEqual(r.json?["code_challenge_methods_supported"], ["S256"])
        XCTAssertEqual(r.json?["token_endpoint"], "https://mcp.example.test/oauth/token")
        XCTAssertEqual(r.json?["client_id_metadata_document_supported"], true)
        XCTAssertEqual(r.json?["authorization_response_iss_parameter_supported"], true)
        XCTAssertEqual(send("GET", "/.well-known/openid-configuration").status, 200)
    }

    private func instanceAccepts(_ token: String) -> Bool {
        if case .success = server.front.verifier.check(token) { return true }
        return false
    }
}
