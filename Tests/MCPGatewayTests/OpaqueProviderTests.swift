import EntraAuth
import Foundation
import GatewayCrypto
import GatewayStore
import GatewaySupport
import MCPGatewayTesting
import MCPJSON
import UpstreamHTTP
import XCTest
@testable import MCPGateway

/// Fake Google tokeninfo and fake GitHub REST API, in the shapes their documentation gives
/// (errors included), on 127.0.0.1.
final class FakeOpaqueProviders: @unchecked Sendable {
    static let client = "1234567890-abc.apps.googleusercontent.com"
    let lock = NSLock()
    /// tokeninfo answers by token: the documented fields, numbers and booleans as strings.
    var googleTokens: [String: JSONObject] = [:]
    /// GitHub users by token, and the organizations each token may list (nil: no read:org, a 403).
    var githubUsers: [String: JSONObject] = [:]
    var githubOrgs: [String: [String]?] = [:]
    /// Teams by token, as "org/slug".
    var githubTeams: [String: [String]] = [:]
    var down = false
    private(set) var server: ScriptedHTTPServer!

    init() throws {
        server = try ScriptedHTTPServer { [unowned self] request in self.answer(request) }
    }

    var baseURL: String { server.baseURL }

    private func bearer(_ request: ScriptedHTTPServer.Request) -> String? {
        guard let h = request.headers["authorization"], h.hasPrefix("Bearer ") else { return nil }
        return String(h.dropFirst(7))
    }

    private func json(_ status: Int, _ value: JSONValue) -> ScriptedHTTPServer.Reply {
        ScriptedHTTPServer.Reply(status: status, body: JSONWriter.string(value))
    }

    private func answer(_ request: ScriptedHTTPServer.Request) -> ScriptedHTTPServer.Reply {
        lock.lock(); defer { lock.unlock() }
        if down { return json(503, ["message": "Service Unavailable"]) }
        let token = bearer(request) ?? ""
        switch request.path {
        case "/tokeninfo":
            guard request.method == "POST", let info = googleTokens[token] else {
                return json(400, ["error": "invalid_token", "error_description": "Invalid Value"])
            }
            return json(200, .object(info))
        case "/user":
            guard let user = githubUsers[token] else {
                return json(401, ["message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"])
            }
            return json(200, .object(user))
        case "/user/orgs?per_page=100":
            guard githubUsers[token] != nil else { return json(401, ["message": "Bad credentials"]) }
            guard let orgs = githubOrgs[token] ?? nil else {
                return json(403, ["message": "Resource not accessible by personal access token",
                                  "documentation_url": "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user"])
            }
            return json(200, .array(orgs.enumerated().map { i, login in ["login": .string(login), "id": .integer(1000 + i)] }))
        case "/user/teams?per_page=100":
            guard githubUsers[token] != nil else { return json(401, ["message": "Bad credentials"]) }
            return json(200, .array((githubTeams[token] ?? []).map { team in
                let parts = team.split(separator: "/").map(String.init)
                return ["slug": .string(parts[1]), "name": .string(parts[1]), "organization": ["login": .string(parts[0])]]
            }))
        default:
            return json(404, ["message": "Not Found"])
        }
    }

    func set(_ body: () -> Void) { lock.withLock(body) }

    static func tokenInfo(sub: String, aud: String = client, expiresIn: Int = 3599, email: String = "ada@contoso.com",
                          verified: Bool = true) -> JSONObject {
        JSONObject(["azp": .string(aud), "aud": .string(aud), "sub": .string(sub), "scope": "openid https://www.googleapis.com/auth/userinfo.email",
                    "exp": .string(String(1_800_000_000 + expiresIn)), "expires_in": .string(String(expiresIn)),
                    "email": .string(email), "email_verified": .string(verified ? "true" : "false"), "access_type": "online"])
    }
}

final class OpaqueProviderTests: XCTestCase {
    var fake: FakeOpaqueProviders!
    var dir = ""
    var store: SQLiteStore!
    let clock = TestClock<Int64>()
    let tenant = GatewayFixture.tenant
    let googleToken = "ya29.a0AfH6SMBx-fake-google-access-token"
    let githubToken = "gho_16C7e42F292c6912E7710c838347Ae178B4a"

    override func setUpWithError() throws {
        fake = try FakeOpaqueProviders()
        dir = makeTempDirectory()
        store = try SQLiteStore(path: dir + "/store.db")
        fake.set {
            fake.googleTokens[googleToken] = FakeOpaqueProviders.tokenInfo(sub: "110169484474386276334")
            fake.githubUsers[githubToken] = ["login": "octocat", "id": 583231, "name": "The Octocat"]
            fake.githubOrgs[githubToken] = ["acme-corp"]
        }
    }

    override func tearDown() {
        fake.server.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    var http: HTTPClient {
        var o = CurlHTTPClientOptions()
        o.allowInsecureHTTPForTesting = true
        o.totalTimeoutSeconds = 5
        o.maxRetries = 0
        return CurlHTTPClient(options: o)
    }

    func context(ttl: Int) -> IntrospectionContext {
        let clock = self.clock
        return IntrospectionContext(http: http, cache: store, cacheTTLSeconds: ttl, allowedTenants: [tenant], acceptAnyTenant: false,
                                    clock: { clock.now })
    }

    func google(ttl: Int = 300) -> GoogleAccessTokenProvider {
        var settings = GoogleAccessTokenSettings(clientID: FakeOpaqueProviders.client)
        settings.tokenInfoURL = fake.baseURL + "/tokeninfo"
        return GoogleAccessTokenProvider(settings: settings, context: context(ttl: ttl), emailDomains: ["contoso.com": tenant])
    }

    func github(orgs: Bool = true, teams: [String] = []) -> GitHubProvider {
        var s = GitHubProviderSettings()
        s.apiURL = fake.baseURL + "/"
        if orgs { s.organizations = [.init(login: "acme-corp", tenant: tenant, roles: ["MCP.User"], teams: teams)] } else { s.tenant = tenant }
        return GitHubProvider(settings: s, context: context(ttl: 300))
    }

    func check(_ p: BearerTokenProvider, _ token: String) -> (Result<Principal, TokenVerificationError>, Bool) {
        var hit = false
        let r = p.check(token, cacheHit: &hit)
        return (r, hit)
    }

    // MARK: - Google access tokens

    func testGoogleAccessTokenIsAskedOnceThenServedFromTheSharedCacheByDigest() throws {
        let (first, hit1) = check(google(), googleToken)
        let p = try first.get()
        XCTAssertFalse(hit1)
        XCTAssertEqual(p.objectId, "google:110169484474386276334")
        XCTAssertEqual(p.provider, "google")
        XCTAssertEqual(p.tenantId, tenant)
        XCTAssertEqual(p.userPrincipalName, "ada@contoso.com")
        // Another process (a fresh provider) finds the verdict in the store.
        let (second, hit2) = check(google(), googleToken)
        XCTAssertEqual(try second.get().objectId, p.objectId)
        XCTAssertTrue(hit2)
        XCTAssertEqual(fake.server.hits("/tokeninfo"), 1)
        XCTAssertNil(fake.server.requests.first?.path.range(of: "ya29"), "the token travels in a header, never in the URL")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: dir + "/store.db"))
            + ((try? Data(contentsOf: URL(fileURLWithPath: dir + "/store.db-wal"))) ?? Data())
        XCTAssertNil(bytes.range(of: Data(googleToken.utf8)), "only a digest of the token is kept")
        XCTAssertNotNil(bytes.range(of: Data(SHA256Digest(Array(googleToken.utf8)).hex.utf8)))
    }

    func testGoogleTokenForAnotherClientAndExpiresInHonoured() throws {
        let other = "ya29.other-client-token"
        let short = "ya29.short-lived-token"
        fake.set {
            fake.googleTokens[other] = FakeOpaqueProviders.tokenInfo(sub: "1", aud: "999-other.apps.googleusercontent.com")
            fake.googleTokens[short] = FakeOpaqueProviders.tokenInfo(sub: "2", expiresIn: 30)
        }
        XCTAssertEqual(check(google(), other).0.failure, .invalidAudience)
        XCTAssertEqual(check(google(), "ya29.unknown").0.failure, .rejectedByProvider)
        XCTAssertNoThrow(try check(google(), short).0.get())
        clock.advance(29)
        XCTAssertTrue(check(google(), short).1, "cached within expires_in")
        clock.advance(2)
        XCTAssertFalse(check(google(), short).1, "not past expires_in, though the TTL is longer")
        var unverified = FakeOpaqueProviders.tokenInfo(sub: "3", verified: false)
        unverified["scope"] = "openid"
        fake.set { fake.googleTokens["ya29.unverified"] = unverified }
        XCTAssertEqual(check(google(), "ya29.unverified").0.failure, .emailNotVerified)
    }

    // MARK: - GitHub

    func testGitHubUserInTheRequiredOrganization() throws {
        let p = try check(github(), githubToken).0.get()
        XCTAssertEqual(p.objectId, "github:583231")
        XCTAssertEqual(p.roles, ["MCP.User"])
        XCTAssertEqual(p.tenantId, tenant)
        XCTAssertEqual(p.displayName, "The Octocat")
        XCTAssertTrue(check(github(), githubToken).1)
        XCTAssertEqual(fake.server.hits("/user"), 1)
        // GitHub tokens carry no lifetime: the 5-minute TTL alone bounds the cache.
        clock.advance(301)
        XCTAssertFalse(check(github(), githubToken).1)
        XCTAssertEqual(fake.server.hits("/user"), 2)
        let request = try XCTUnwrap(fake.server.requests.first)
        XCTAssertEqual(request.headers["accept"], "application/vnd.github+json")
        XCTAssertEqual(request.headers["x-github-api-version"], "2022-11-28")
    }

    func testGitHubUserOutsideTheOrganizationWithoutReadOrgAndBadCredentials() throws {
        let outsider = "ghp_outsider000000000000000000000000000"
        let noScope = "ghp_noreadorg00000000000000000000000000"
        fake.set {
            fake.githubUsers[outsider] = ["login": "mallory", "id": 666]
            fake.githubOrgs[outsider] = ["evil-corp"]
            fake.githubUsers[noScope] = ["login": "bob", "id": 777]
            fake.githubOrgs[noScope] = .some(nil)
        }
        XCTAssertEqual(check(github(), outsider).0.failure, .organizationNotAllowed)
        XCTAssertEqual(check(github(), noScope).0.failure, .providerScopeMissing)
        XCTAssertEqual(check(github(), "gho_revoked0000000000000000000000000000").0.failure, .rejectedByProvider)
        // With a fixed tenant and no organizations, /user alone decides.
        XCTAssertEqual(try check(github(orgs: false), outsider).0.get().objectId, "github:666")
    }

    func testGitHubTeamMembershipWhenTheOrganizationNamesTeams() throws {
        let member = "ghu_teammember0000000000000000000000000"
        fake.set {
            fake.githubUsers[member] = ["login": "ada", "id": 1815]
            fake.githubOrgs[member] = ["acme-corp"]
            fake.githubTeams[member] = ["acme-corp/platform", "other-org/mcp-admins"]
            fake.githubTeams[githubToken] = ["acme-corp/sales"]
        }
        let elsewhere = "ghu_elsewhere00000000000000000000000000"
        fake.set {
            fake.githubUsers[elsewhere] = ["login": "eve", "id": 1816]
            fake.githubOrgs[elsewhere] = ["acme-corp", "other-org"]
            fake.githubTeams[elsewhere] = ["other-org/mcp-admins"]
        }
        XCTAssertEqual(try check(github(teams: ["mcp-admins", "platform"]), member).0.get().objectId, "github:1815")
        // In the organization, but in none of its named teams.
        XCTAssertEqual(check(github(teams: ["mcp-admins"]), githubToken).0.failure, .organizationNotAllowed)
        // A team of that name in another organization does not count.
        XCTAssertEqual(check(github(teams: ["mcp-admins"]), elsewhere).0.failure, .organizationNotAllowed)
        XCTAssertEqual(fake.server.hits("/user/teams?per_page=100"), 3)
    }

    func testLookupsAreRateLimitedAcrossTheSiteWhileCachedVerdictsServe() throws {
        let clock = self.clock
        let limited = IntrospectionContext(http: http, cache: store, cacheTTLSeconds: 300, allowedTenants: [tenant], acceptAnyTenant: false,
                                           lookups: (store, 5), clock: { clock.now })
        var s = GitHubProviderSettings()
        s.apiURL = fake.baseURL
        s.tenant = tenant
        let provider = GitHubProvider(settings: s, context: limited)
        XCTAssertNoThrow(try check(provider, githubToken).0.get())
        // Burst of one: the next made-up token is not even sent to GitHub.
        let before = fake.server.hits("/user")
        XCTAssertEqual(check(provider, "gho_madeup00000000000000000000000000000000").0.failure, .providerUnavailable)
        XCTAssertEqual(fake.server.hits("/user"), before)
        XCTAssertTrue(check(provider, githubToken).1, "the cached verdict still serves")
        clock.advance(12)
        XCTAssertEqual(check(provider, "gho_madeup00000000000000000000000000000000").0.failure, .rejectedByProvider)
    }

    func testProviderDownIs503NotARefusal() throws {
        fake.set { fake.down = true }
        XCTAssertEqual(check(github(), githubToken).0.failure, .providerUnavailable)
        XCTAssertEqual(check(google(), googleToken).0.failure, .providerUnavailable)
        fake.server.stop()
        XCTAssertEqual(check(github(), "gho_another00000000000000000000000000000").0.failure, .providerUnavailable)
    }

    // MARK: - Through the gateway

    func testGatewayServesGitHubUsersAndAnswers503WhenGitHubIsDown() throws {
        let f = try GatewayFixture(auth: [
            "allow_insecure_http_for_testing": true,
            "providers": [["type": "entra"],
                          ["type": "github", "api_url": .string(fake.baseURL),
                           "organizations": ["Acme-Corp": ["tenant": .string(tenant), "roles": ["MCP.User"]]]],
                          ["type": "google_access_token", "client_id": .string(FakeOpaqueProviders.client),
                           "tokeninfo_url": .string(fake.baseURL + "/tokeninfo"), "tenant": .string(tenant)]],
        ])
        let whoami = GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        let ok = f.post(whoami, token: githubToken)
        XCTAssertEqual(ok.status, 200)
        XCTAssertTrue(JSONWriter.string(ok.json ?? .null).contains("github:583231"))
        XCTAssertEqual(f.post(whoami, token: googleToken).status, 200)
        let refused = f.post(whoami, token: "gho_revoked0000000000000000000000000000")
        XCTAssertEqual(refused.status, 401)
        XCTAssertTrue(refused.header("WWW-Authenticate")?.contains("refused by its identity provider") == true)
        fake.set { fake.down = true }
        let down = f.post(whoami, token: "gho_new00000000000000000000000000000000000")
        XCTAssertEqual(down.status, 503)
        XCTAssertEqual(down.header("Retry-After"), "30")
        XCTAssertEqual(f.post(whoami, token: githubToken).status, 200, "a cached verdict still serves while GitHub is down")
        let doc = try XCTUnwrap(f.gateway.respond(to: HTTPRequest(method: "GET", path: "/.well-known/oauth-protected-resource/mcp")).json)
        XCTAssertEqual(doc["authorization_servers"]?.arrayValue?.compactMap(\.stringValue).suffix(2),
                       ["https://github.com/login/oauth", "https://accounts.google.com"])
    }
}
