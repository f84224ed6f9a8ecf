import Foundation
import GatewayCrypto
import GatewayStore
import MCPGatewayTesting
import MCPJSON
import UpstreamHTTP
import XCTest
@testable import MCPGateway

// MARK: - Test doubles

/// The OAuth store in memory: clients with expiry as the interface describes; the rest plainly.
final class InMemoryOAuthStore: OAuthStore, @unchecked Sendable {
    private let lock = NSLock()
    private var clients: [String: OAuthClientRecord] = [:]
    private var pending: [String: PendingAuthorization] = [:]
    private var codes: [String: (code: StoredAuthorizationCode, used: Bool)] = [:]
    private var grantsById: [String: OAuthGrant] = [:]
    private var refreshTokens: [String: StoredRefreshToken] = [:]
    /// When set, every call throws it: an unavailable store.
    var failure: Error?

    private func locked<T>(_ body: () throws -> T) throws -> T {
        try lock.withLock {
            if let failure { throw failure }
            return try body()
        }
    }

    var savedClients: [OAuthClientRecord] { lock.withLock { Array(clients.values) } }

    func oauthClient(id: String, now: Double) throws -> OAuthClientRecord? {
        try locked { clients[id].flatMap { r in r.expiresAt.map { $0 > now } ?? true ? r : nil } }
    }
    func saveOAuthClient(_ client: OAuthClientRecord) throws { try locked { clients[client.clientId] = client } }
    func removeOAuthClient(id: String) throws -> Bool { try locked { clients.removeValue(forKey: id) != nil } }
    func oauthClients() throws -> [OAuthClientRecord] { try locked { clients.values.sorted { $0.createdAt < $1.createdAt } } }

    func savePendingAuthorization(_ p: PendingAuthorization) throws { try locked { pending[p.id] = p } }
    func pendingAuthorization(id: String, now: Double) throws -> PendingAuthorization? {
        try locked { pending[id].flatMap { $0.expiresAt > now ? $0 : nil } }
    }
    func takePendingAuthorization(upstreamState: String, now: Double) throws -> PendingAuthorization? {
        try locked {
            guard let p = pending.values.first(where: { $0.upstreamState == upstreamState }) else { return nil }
            pending[p.id] = nil
            return p.expiresAt > now ? p : nil
        }
    }

    func saveAuthorizationCode(_ code: StoredAuthorizationCode) throws { try locked { codes[code.sha256] = (code, false) } }
    func redeemAuthorizationCode(sha256: String, now: Double) throws -> CodeRedemption? {
        try locked {
            guard let entry = codes[sha256] else { return nil }
            codes[sha256] = (entry.code, true)
            return CodeRedemption(code: entry.code, alreadyUsed: entry.used)
        }
    }

    func saveGrant(_ grant: OAuthGrant) throws { try locked { grantsById[grant.id] = grant } }
    func grant(id: String) throws -> OAuthGrant? { try locked { grantsById[id] } }
    func updateGrantUpstreamToken(id: String, sealedRefreshToken: [UInt8], now: Double) throws {
        try locked {
            grantsById[id]?.sealedRefreshToken = sealedRefreshToken
            grantsById[id]?.updatedAt = now
        }
    }
    func revokeGrant(id: String, now: Double) throws -> Bool {
        try locked {
            guard grantsById[id] != nil, grantsById[id]?.revokedAt == nil else { return false }
            grantsById[id]?.revokedAt = now
            return true
        }
    }
    func revokeGrants(tenant: String, user: String, now: Double) throws -> Int {
        let ids = try grants(tenant: tenant, user: user).map(\.id)
        return try ids.filter { try revokeGrant(id: $0, now: now) }.count
    }
    func grants(tenant: String?, user: String?) throws -> [OAuthGrant] {
        try locked {
            grantsById.values.filter { g in
                g.revokedAt == nil && (tenant.map { $0.lowercased() == g.tenant } ?? true) && (user.map { $0.lowercased() == g.user } ?? true)
            }.sorted { $0.createdAt > $1.createdAt }
        }
    }

    func saveRefreshToken(_ token: StoredRefreshToken) throws { try locked { refreshTokens[token.sha256] = token } }
    func refreshToken(sha256: String) throws -> StoredRefreshToken? { try locked { refreshTokens[sha256] } }
    func markRefreshTokenRotated(sha256: String, now: Double) throws -> Bool {
        try locked {
            guard refreshTokens[sha256] != nil, refreshTokens[sha256]?.rotatedAt == nil else { return false }
            refreshTokens[sha256]?.rotatedAt = now
            return true
        }
    }

    func pruneOAuth(now: Double) throws {
        try locked {
            clients = clients.filter { $0.value.expiresAt.map { $0 > now } ?? true }
            pending = pending.filter { $0.value.expiresAt > now }
            codes = codes.filter { $0.value.code.expiresAt > now }
            refreshTokens = refreshTokens.filter { $0.value.expiresAt > now }
        }
    }
}

/// An HTTP client that answers from a script and remembers what it was asked.
final class ScriptedHTTPClient: HTTPClient, @unchecked Sendable {
    private let lock = NSLock()
    private var answer: @Sendable (UpstreamRequest) throws -> UpstreamResponse
    private(set) var requests: [UpstreamRequest] = []

    init(_ answer: @escaping @Sendable (UpstreamRequest) throws -> UpstreamResponse) { self.answer = answer }

    func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
        let answer = lock.withLock { requests.append(request); return self.answer }
        return try answer(request)
    }

    func reply(_ answer: @escaping @Sendable (UpstreamRequest) throws -> UpstreamResponse) { lock.withLock { self.answer = answer } }
    var count: Int { lock.withLock { requests.count } }
}

/// Host names to fixed addresses.
struct FixedResolver: HostResolver {
    var table: [String: [String]]
    func addresses(of host: String) throws -> [String] {
        guard let list = table[host] else { throw HostResolutionError(description: "cannot resolve \(host): unknown host") }
        return list
    }
}

// MARK: - Redirect URIs

final class RedirectURIRuleTests: XCTestCase {
    func testRegistrationAcceptsHTTPSAndLoopbackHTTP() {
        for uri in ["https://claude.ai/api/mcp/auth_callback", "https://app.example:8443/cb?x=1", "http://127.0.0.1/callback",
                    "http://127.0.0.1:33418/", "http://[::1]:8080/cb", "http://localhost:3000/oauth/callback", "http://127.0.0.1"] {
            XCTAssertNil(RedirectURIRule.problem(with: uri, allowedHosts: nil), uri)
        }
    }

    func testRegistrationRefusalsSayWhy() {
        let https = "must use https (plain http only on 127.0.0.1, [::1] or localhost)"
        let cases: [(String, String)] = [
            ("http://app.example/cb", https),
            ("http://127.0.0.2/cb", https),
            ("ftp://app.example/cb", https),
            ("https://app.example/cb#frag", "must not contain a fragment (#)"),
            ("https://user:pw@app.example/cb", "must not contain a user name or password"),
            ("com.example.app:/callback", "is not an absolute URL (visible ASCII, scheme://host/path)"),
            ("/relative/cb", "is not an absolute URL (visible ASCII, scheme://host/path)"),
            ("https://app example/cb", "is not an absolute URL (visible ASCII, scheme://host/path)"),
            ("https://bücher.example/cb", "is not an absolute URL (visible ASCII, scheme://host/path)"),
            ("https:///cb", "is not an absolute URL (visible ASCII, scheme://host/path)"),
            ("https://app.example:0/cb", "is not an absolute URL (visible ASCII, scheme://host/path)"),
            ("https://app.example/" + String(repeating: "a", count: 2000), "is longer than 2000 characters"),
        ]
        for (uri, problem) in cases {
            XCTAssertEqual(RedirectURIRule.problem(with: uri, allowedHosts: nil), problem, uri)
        }
    }

    func testRedirectHostsLimitHTTPSButNeverLoopback() {
        let hosts = ["claude.ai", "claude.com"]
        XCTAssertNil(RedirectURIRule.problem(with: "https://claude.ai/api/mcp/auth_callback", allowedHosts: hosts))
        XCTAssertNil(RedirectURIRule.problem(with: "https://Claude.AI/cb", allowedHosts: hosts))
        XCTAssertNil(RedirectURIRule.problem(with: "http://127.0.0.1:9000/cb", allowedHosts: hosts))
        XCTAssertEqual(RedirectURIRule.problem(with: "https://evil.example/cb", allowedHosts: hosts),
                       "must be on one of the allowed redirect hosts (claude.ai, claude.com) or a loopback address")
        XCTAssertEqual(RedirectURIRule.problem(with: "https://claude.ai.evil.example/cb", allowedHosts: hosts),
                       "must be on one of the allowed redirect hosts (claude.ai, claude.com) or a loopback address")
        XCTAssertEqual(RedirectURIRule.problem(with: "https://claude.ai/cb", allowedHosts: []),
                       "must be on a loopback address: this server allows no other redirect hosts")
    }

    func testMatchingIsExactButForTheLoopbackPort() {
        let matching: [(String, String)] = [
            ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback"),
            ("http://127.0.0.1:8080/callback", "http://127.0.0.1:51234/callback"),
            ("http://[::1]:1/cb?x=1", "http://[::1]:65535/cb?x=1"),
            ("http://localhost:3000/cb", "http://localhost:4000/cb"),
            ("http://127.0.0.1", "http://127.0.0.1:5000"),
        ]
        for (registered, presented) in matching {
            XCTAssertTrue(RedirectURIRule.matches(registered: registered, presented: presented), "\(registered) ~ \(presented)")
        }
        let refused: [(String, String)] = [
            ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback/extra"),
            ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback?x=1"),
            ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback#x"),
            ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/"),
            ("https://claude.ai/api/mcp/auth_callback", "http://claude.ai/api/mcp/auth_callback"),
            ("https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"),
            ("https://claude.ai/api/mcp/auth_callback", "https://CLAUDE.AI/api/mcp/auth_callback"),
            ("https://claude.ai/api/mcp/auth_callback", "https://claude.ai:443/api/mcp/auth_callback"),
            ("https://app.example:8443/cb", "https://app.example:9443/cb"),
            ("http://127.0.0.1:8080/callback", "http://127.0.0.1:8080/callback/x"),
            ("http://127.0.0.1:8080/callback", "http://127.0.0.1:9090/callback?x=1"),
            ("http://127.0.0.1:8080/callback", "https://127.0.0.1:8080/callback"),
            ("http://127.0.0.1:8080/callback", "http://localhost:8080/callback"),
            ("http://127.0.0.1:8080/callback", "http://[::1]:8080/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1.evil.example/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:80@evil.example/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:99999/callback"),
            ("http://127.0.0.1/callback", "http://127.0.0.1:/callback"),
            ("http://127.0.0.1", "http://127.0.0.1/"),
        ]
        for (registered, presented) in refused {
            XCTAssertFalse(RedirectURIRule.matches(registered: registered, presented: presented), "\(registered) !~ \(presented)")
        }
    }

    func testAClientAllowsOnlyItsOwnRedirectURIs() {
        let client = OAuthClient(clientId: "c", clientName: "C", redirectURIs: ["https://app.example/cb", "http://127.0.0.1/cb"],
                                 grantTypes: ["authorization_code"], authMethod: .none, source: .registered, secretSHA256: nil)
        XCTAssertTrue(client.allows(redirectURI: "https://app.example/cb"))
        XCTAssertTrue(client.allows(redirectURI: "http://127.0.0.1:41000/cb"))
        XCTAssertFalse(client.allows(redirectURI: "https://app.example/cb2"))
        XCTAssertFalse(client.allows(redirectURI: "https://other.example/cb"))
    }
}

// MARK: - Registration

final class ClientRegistrationTests: XCTestCase {
    let clock = TestClock<Double>(1_800_000_000)
    let store = InMemoryOAuthStore()

    func registration(redirectHosts: [String]? = nil) -> ClientRegistration {
        var config = OAuthConfig()
        config.redirectHosts = redirectHosts
        return ClientRegistration(config: config, store: store, now: { [clock] in clock.now })
    }

    func register(_ body: JSONValue, redirectHosts: [String]? = nil) -> (status: Int, body: JSONValue) {
        registration(redirectHosts: redirectHosts).register(body: JSONWriter.serialize(body))
    }

    func assertRefused(_ body: JSONValue, _ error: String, _ description: String, redirectHosts: [String]? = nil,
                       file: StaticString = #filePath, line: UInt = #line) {
        let (status, answer) = register(body, redirectHosts: redirectHosts)
        XCTAssertEqual(status, 400, file: file, line: line)
        XCTAssertEqual(answer, ["error": .string(error), "error_description": .string(description)], file: file, line: line)
    }

    func testAPublicClientIsRegisteredWithoutASecret() throws {
        let (status, answer) = register([
            "client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", "logo_uri": "https://claude.ai/logo.png", "scope": "mcp.tools",
            "jwks": ["keys": []], "software_id": 7,
        ])
        XCTAssertEqual(status, 201)
        let id = try XCTUnwrap(answer["client_id"]?.stringValue)
        XCTAssertTrue(id.hasPrefix("mcpc_"))
        XCTAssertEqual(id.count, 5 + 32)
        XCTAssertTrue(id.dropFirst(5).allSatisfy(\.isHexDigit))
        XCTAssertEqual(answer, [
            "client_id": .string(id), "client_id_issued_at": 1_800_000_000, "client_name": "Claude",
            "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"], "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "token_endpoint_auth_method": "none",
        ], "unknown fields are ignored, not echoed")
        let record = try XCTUnwrap(store.oauthClient(id: id, now: clock.now))
        XCTAssertNil(record.secretSHA256)
        XCTAssertEqual(record.source, .registered)
        XCTAssertNil(record.expiresAt)
        XCTAssertEqual(record.createdAt, 1_800_000_000)
        let client = try XCTUnwrap(OAuthClient(record: record))
        XCTAssertEqual(client.clientName, "Claude")
        XCTAssertEqual(client.authMethod, .none)
        XCTAssertEqual(client.source, .registered)
        XCTAssertEqual(client.grantTypes, ["authorization_code", "refresh_token"])
        XCTAssertTrue(client.allows(redirectURI: "https://claude.ai/api/mcp/auth_callback"))
    }

    func testAConfidentialClientGetsASecretOfWhichOnlyTheDigestIsKept() throws {
        for (method, expected) in [(nil, "client_secret_basic"), ("client_secret_basic", "client_secret_basic"),
                                   ("client_secret_post", "client_secret_post")] as [(String?, String)] {
            var body: JSONObject = ["redirect_uris": ["http://127.0.0.1:8000/cb"]]
            if let method { body["token_endpoint_auth_method"] = .string(method) }
            let (status, answer) = register(.object(body))
            XCTAssertEqual(status, 201)
            let id = try XCTUnwrap(answer["client_id"]?.stringValue)
            let secret = try XCTUnwrap(answer["client_secret"]?.stringValue)
            XCTAssertTrue(secret.hasPrefix("mcps_"))
            XCTAssertEqual(secret.count, 5 + 64)
            XCTAssertEqual(answer["client_secret_expires_at"], 0)
            XCTAssertEqual(answer["token_endpoint_auth_method"]?.stringValue, expected)
            XCTAssertEqual(answer["grant_types"], ["authorization_code"], "RFC 7591 default")
            XCTAssertEqual(answer["response_types"], ["code"])
            XCTAssertNil(answer["client_name"])
            let record = try XCTUnwrap(store.oauthClient(id: id, now: clock.now))
            XCTAssertEqual(record.secretSHA256, SHA256Digest(Array(secret.utf8)).hex)
            XCTAssertFalse(record.metadataJSON.contains(secret), "the secret itself is never stored")
            XCTAssertEqual(try XCTUnwrap(OAuthClient(record: record)).clientName, id, "no name: the consent page shows the id")
        }
    }

    func testRedirectURIRefusals() {
        let invalid = "invalid_redirect_uri"
        assertRefused(["client_name": "x"], invalid, "redirect_uris is required: at least one redirect URI")
        assertRefused(["redirect_uris": []], invalid, "redirect_uris is required: at least one redirect URI")
        assertRefused(["redirect_uris": .null], invalid, "redirect_uris is required: at least one redirect URI")
        assertRefused(["redirect_uris": "https://app.example/cb"], invalid, "redirect_uris must be a list of strings")
        assertRefused(["redirect_uris": [1]], invalid, "redirect_uris must be a list of strings")
        assertRefused(["redirect_uris": .array((0...20).map { .string("https://app.example/cb\($0)") })], invalid,
                      "at most 20 redirect URIs may be registered")
        assertRefused(["redirect_uris": ["https://app.example/cb", "http://app.example/cb"]], invalid,
                      "redirect_uris[1] must use https (plain http only on 127.0.0.1, [::1] or localhost)")
        assertRefused(["redirect_uris": ["https://app.example/cb#x"]], invalid, "redirect_uris[0] must not contain a fragment (#)")
        assertRefused(["redirect_uris": ["https://u@app.example/cb"]], invalid, "redirect_uris[0] must not contain a user name or password")
        assertRefused(["redirect_uris": ["cursor://oauth/cb"]], invalid,
                      "redirect_uris[0] must use https (plain http only on 127.0.0.1, [::1] or localhost)")
        assertRefused(["redirect_uris": ["https://evil.example/cb"]], invalid,
                      "redirect_uris[0] must be on one of the allowed redirect hosts (claude.ai) or a loopback address",
                      redirectHosts: ["claude.ai"])
        XCTAssertEqual(register(["redirect_uris": ["https://claude.ai/cb", "http://localhost:9/cb"], "token_endpoint_auth_method": "none"],
                                redirectHosts: ["claude.ai"]).status, 201)
    }

    func testMetadataRefusals() {
        let invalid = "invalid_client_metadata"
        let uris: JSONValue = ["https://app.example/cb"]
        assertRefused(["redirect_uris": uris, "client_name": 5], invalid, "client_name must be a string")
        assertRefused(["redirect_uris": uris, "client_name": .string(String(repeating: "n", count: 201))], invalid,
                      "client_name is longer than 200 characters")
        let unprintable = "client_name must be printable text (no control or formatting characters, not only spaces)"
        assertRefused(["redirect_uris": uris, "client_name": "Claude\u{7}"], invalid, unprintable)
        assertRefused(["redirect_uris": uris, "client_name": "Claude\u{202E}edualC"], invalid, unprintable)
        assertRefused(["redirect_uris": uris, "client_name": "   "], invalid, unprintable)
        assertRefused(["redirect_uris": uris, "grant_types": "authorization_code"], invalid, "grant_types must be a list of strings")
        assertRefused(["redirect_uris": uris, "grant_types": ["authorization_code", "client_credentials"]], invalid,
                      "grant_types may hold only authorization_code and refresh_token")
        assertRefused(["redirect_uris": uris, "grant_types": ["refresh_token"]], invalid, "grant_types must include authorization_code")
        assertRefused(["redirect_uris": uris, "response_types": ["token"]], invalid, "response_types must be [\"code\"]")
        assertRefused(["redirect_uris": uris, "response_types": ["code", "id_token"]], invalid, "response_types must be [\"code\"]")
        assertRefused(["redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt"], invalid,
                      "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
        assertRefused(["redirect_uris": uris, "token_endpoint_auth_method": true], invalid,
                      "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
        XCTAssertEqual(register(["redirect_uris": uris, "client_name": "Visual Studio Code — Insiders ✓"]).status, 201,
                       "names may be any printable text")
    }

    func testBodyRefusals() {
        let r = registration()
        XCTAssertEqual(r.register(body: Array("{\"redirect_uris\":".utf8)).body["error_description"], "the registration is not valid JSON")
        XCTAssertEqual(r.register(body: Array("[]".utf8)).body["error_description"], "the registration must be a JSON object")
        XCTAssertEqual(r.register(body: Array("{\"a\":1,\"a\":2}".utf8)).body["error_description"], "the registration is not valid JSON")
        let big = r.register(body: Array(("{\"x\":\"" + String(repeating: "a", count: 17_000) + "\"}").utf8))
        XCTAssertEqual(big.status, 400)
        XCTAssertEqual(big.body, ["error": "invalid_client_metadata", "error_description": "the registration is larger than 16384 bytes"])
        XCTAssertTrue(store.savedClients.isEmpty, "nothing refused is stored")
    }

    func testAnUnavailableStoreAnswers503() {
        store.failure = StoreError("disk full")
        let (status, answer) = register(["redirect_uris": ["https://app.example/cb"]])
        XCTAssertEqual(status, 503)
        XCTAssertEqual(answer["error"], "temporarily_unavailable")
        XCTAssertNil(answer["client_secret"])
    }
}

// MARK: - Metadata documents

final class ClientMetadataDocumentTests: XCTestCase {
    let clock = TestClock<Double>(1_800_000_000)
    let store = InMemoryOAuthStore()
    let documentURL = "https://app.example/oauth/client.json"
    let resolver = FixedResolver(table: ["app.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]])

    func document(_ changes: JSONObject = [:], removing: [String] = []) -> JSONObject {
        var d: JSONObject = ["client_id": .string(documentURL), "client_name": "Example App",
                             "redirect_uris": ["https://app.example/callback", "http://127.0.0.1/callback"],
                             "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none",
                             "logo_uri": "https://app.example/logo.png"]
        for (k, v) in changes { d[k] = v }
        for k in removing { d[k] = nil }
        return d
    }

    static func ok(_ body: JSONObject, cacheControl: String? = nil) -> UpstreamResponse {
        var headers = [("content-type", "application/json")]
        if let cacheControl { headers.append(("cache-control", cacheControl)) }
        return UpstreamResponse(status: 200, headers: headers, body: JSONWriter.serialize(.object(body)))
    }

    func directory(_ http: HTTPClient, resolver: HostResolver? = nil, configure: (inout OAuthConfig) -> Void = { _ in }) -> ClientDirectory {
        var config = OAuthConfig()
        configure(&config)
        return ClientDirectory(config: config, store: store, http: http, resolver: resolver ?? self.resolver, now: { [clock] in clock.now })
    }

    func assertRefused(_ directory: ClientDirectory, _ reason: String, id: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try directory.client(id: id ?? documentURL), file: file, line: line) { error in
            XCTAssertEqual(error as? ClientLookupError, .metadataDocumentRefused(clientId: id ?? documentURL, reason: reason),
                           file: file, line: line)
        }
    }

    func testAValidDocumentIsFetchedPinnedAndCachedForItsMaxAge() throws {
        let doc = document()
        let http = ScriptedHTTPClient { _ in Self.ok(doc, cacheControl: "public, max-age=600") }
        let dir = directory(http)
        let client = try XCTUnwrap(dir.client(id: documentURL))
        XCTAssertEqual(client.clientId, documentURL)
        XCTAssertEqual(client.clientName, "Example App")
        XCTAssertEqual(client.source, .metadataDocument)
        XCTAssertEqual(client.authMethod, .none)
        XCTAssertNil(client.secretSHA256)
        XCTAssertTrue(client.allows(redirectURI: "http://127.0.0.1:6000/callback"))
        let request = try XCTUnwrap(http.requests.first)
        XCTAssertEqual(request.method, "GET")
        XCTAssertEqual(request.url, documentURL)
        XCTAssertEqual(request.pinnedAddresses, ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
                       "the connection goes to the addresses that were checked")
        XCTAssertEqual(request.timeoutSeconds, 5)
        XCTAssertEqual(request.headers.first { $0.0 == "Accept" }?.1, "application/json")

        let record = try XCTUnwrap(store.oauthClient(id: documentURL, now: clock.now))
        XCTAssertEqual(record.source, .metadataDocument)
        XCTAssertEqual(record.expiresAt, clock.now + 600)
        XCTAssertFalse(record.metadataJSON.contains("logo_uri"), "only the fields we use are kept")

        clock.advance(599)
        XCTAssertEqual(try dir.client(id: documentURL)?.clientName, "Example App")
        XCTAssertEqual(http.count, 1, "a cache hit within max-age")
        clock.advance(2)
        http.reply { _ in Self.ok(self.document(["client_name": "Renamed App"])) }
        XCTAssertEqual(try dir.client(id: documentURL)?.clientName, "Renamed App")
        XCTAssertEqual(http.count, 2, "fetched again once expired")
        XCTAssertEqual(try store.oauthClient(id: documentURL, now: clock.now)?.expiresAt, clock.now + 3600, "default 1 h")
    }

    func testCacheLifetimeIsClampedToAMinuteAndADay() {
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime(nil), 3600)
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime("max-age=10"), 60)
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime("public, max-age=7200"), 7200)
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime("max-age=9999999"), 86_400)
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime("no-store"), 60)
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime("max-age=600, no-cache"), 60)
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime("max-age=soon"), 3600)
        XCTAssertEqual(ClientMetadataDocumentFetcher.cacheLifetime("=, max-age"), 3600)
    }

    func testFailuresAreNeverCached() throws {
        let http = ScriptedHTTPClient { _ in UpstreamResponse(status: 500) }
        let dir = directory(http)
        assertRefused(dir, "it answered HTTP 500, not 200")
        XCTAssertTrue(store.savedClients.isEmpty)
        http.reply { _ in Self.ok(self.document()) }
        XCTAssertEqual(try dir.client(id: documentURL)?.clientName, "Example App")
        XCTAssertEqual(http.count, 2, "the failure was not remembered")
    }

    func testDocumentRefusals() {
        let cases: [(UpstreamResponse, String)] = [
            (Self.ok(document(["client_id": "https://other.example/client.json"])), "its client_id is not the URL it was fetched from"),
            (Self.ok(document(removing: ["client_id"])), "its client_id is not the URL it was fetched from"),
            (Self.ok(document(removing: ["client_name"])), "client_name is required"),
            (Self.ok(document(removing: ["redirect_uris"])), "redirect_uris is required: at least one redirect URI"),
            (Self.ok(document(["redirect_uris": ["http://app.example/cb"]])),
             "redirect_uris[0] must use https (plain http only on 127.0.0.1, [::1] or localhost)"),
            (Self.ok(document(["token_endpoint_auth_method": "client_secret_basic"])),
             "token_endpoint_auth_method must be none: a metadata document cannot use a shared secret"),
            (Self.ok(document(["token_endpoint_auth_method": "private_key_jwt"])),
             "token_endpoint_auth_method must be none: a metadata document cannot use a shared secret"),
            (Self.ok(document(["client_secret": "s3cr3t"])), "a metadata document must not contain a client_secret"),
            (UpstreamResponse(status: 200, body: Array("{\"client_id\":".utf8)), "the document is not a JSON object"),
            (UpstreamResponse(status: 200, body: Array("[1]".utf8)), "the document is not a JSON object"),
            (UpstreamResponse(status: 404), "it answered HTTP 404, not 200"),
            (UpstreamResponse(status: 302, headers: [("location", "https://app.example/elsewhere.json")]),
             "it answered 302, a redirect: metadata documents are fetched without following redirects"),
            (UpstreamResponse(status: 200, body: [UInt8](repeating: 0x20, count: 5121)), "the document is larger than 5120 bytes"),
        ]
        for (response, reason) in cases {
            assertRefused(directory(ScriptedHTTPClient { _ in response }), reason)
        }
        XCTAssertTrue(store.savedClients.isEmpty)
    }

    func testTransportFailures() {
        assertRefused(directory(ScriptedHTTPClient { _ in throw UpstreamError.responseTooLarge(host: "app.example", limit: 5120) }),
                      "the document is larger than 5120 bytes")
        assertRefused(directory(ScriptedHTTPClient { _ in throw UpstreamError.timeout(host: "app.example", seconds: 5) }),
                      "app.example did not answer within 5 s")
        assertRefused(directory(ScriptedHTTPClient { _ in throw UpstreamError.tls(host: "app.example", detail: "bad certificate") }),
                      "TLS failure talking to app.example: bad certificate")
        assertRefused(directory(ScriptedHTTPClient { _ in UpstreamResponse(status: 200) }, resolver: FixedResolver(table: [:])),
                      "cannot resolve app.example: unknown host")
        assertRefused(directory(ScriptedHTTPClient { _ in UpstreamResponse(status: 200) }, resolver: FixedResolver(table: ["app.example": []])),
                      "app.example has no address")
    }

    func testPrivateAndSpecialAddressesAreNeverFetched() {
        let http = ScriptedHTTPClient { _ in Self.ok(self.document()) }
        for address in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                        "224.0.0.1", "255.255.255.255", "198.18.0.1", "::1", "::", "fd00::1", "fe80::1", "ff02::1",
                        "::ffff:10.0.0.1", "64:ff9b::a00:1", "2001:db8::1"] {
            let resolver = FixedResolver(table: ["app.example": ["93.184.215.14", address]])
            assertRefused(directory(http, resolver: resolver), "app.example resolves to \(address), which is not a public internet address")
        }
        XCTAssertEqual(http.count, 0, "refused before any connection")
        XCTAssertTrue(store.savedClients.isEmpty)
    }

    func testTheTestingFlagAllowsPrivateHostsAndPlainHTTP() throws {
        let id = "http://127.0.0.1:8999/client.json"
        let http = ScriptedHTTPClient { _ in Self.ok(self.document(["client_id": .string(id)])) }
        let strict = directory(http, resolver: SystemHostResolver())
        XCTAssertNil(try strict.client(id: id), "plain http is not a metadata document URL")
        let rig = directory(http, resolver: SystemHostResolver()) { $0.allowPrivateMetadataHostsForTesting = true }
        XCTAssertEqual(try rig.client(id: id)?.clientId, id)
        XCTAssertEqual(http.requests.last?.pinnedAddresses, ["127.0.0.1"])
        let literal = "https://[::1]/client.json"
        http.reply { _ in Self.ok(self.document(["client_id": .string(literal)])) }
        assertRefused(directory(http, resolver: SystemHostResolver()), "[::1] resolves to ::1, which is not a public internet address",
                      id: literal)
    }

    func testWhichClientIdsAreDocumentURLs() {
        let fetcher = ClientMetadataDocumentFetcher(config: OAuthConfig(), http: ScriptedHTTPClient { _ in UpstreamResponse(status: 500) },
                                                    store: store, resolver: resolver, now: { [clock] in clock.now })
        for id in ["https://app.example/client.json", "https://app.example:8443/a/b?v=1", "https://app.example/%2e%2efoo"] {
            XCTAssertTrue(fetcher.isDocumentURL(id), id)
        }
        for id in ["https://app.example", "https://app.example/", "https://app.example/client.json#x", "https://u:p@app.example/c",
                   "https://app.example/a/../c", "https://app.example/./c", "https://app.example./c", "https://app.example/a/%2E%2e/c", "http://app.example/c",
                   "mcpc_0123456789abcdef0123456789abcdef", "app.example/client.json", "https://app example/c"] {
            XCTAssertFalse(fetcher.isDocumentURL(id), id)
        }
    }

    func testTheProductionTransportConnectsToThePinnedAddress() throws {
        let server = try ScriptedHTTPServer { _ in .init(headers: [("Content-Type", "application/json"), ("Cache-Control", "max-age=120")],
                                                         body: "{}") }
        defer { server.stop() }
        var config = OAuthConfig()
        config.allowPrivateMetadataHostsForTesting = true
        let transport = ClientMetadataDocumentFetcher.transport(for: config)
        XCTAssertEqual(transport.options.maxResponseBytes, 5120)
        XCTAssertEqual(transport.options.totalTimeoutSeconds, 5)
        XCTAssertEqual(transport.options.maxRetries, 0)
        // The name does not exist: only the pin can lead there.
        let url = "http://metadata.invalid:\(server.port)/client.json"
        let response = try transport.send(UpstreamRequest(url: url, pinnedAddresses: ["127.0.0.1"]))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(server.lastRequest?.path, "/client.json")
        XCTAssertEqual(server.lastRequest?.headers["host"], "metadata.invalid:\(server.port)")
        XCTAssertThrowsError(try transport.send(UpstreamRequest(url: url)), "without the pin the name does not resolve")
        XCTAssertEqual(try CurlHTTPClient.resolveEntry("https://app.example/x", addresses: ["93.184.215.14", "2606:2800::1"]),
                       "app.example:443:93.184.215.14,[2606:2800::1]")
        XCTAssertEqual(try CurlHTTPClient.resolveEntry("http://app.example:8080/x", addresses: ["93.184.215.14"]),
                       "app.example:8080:93.184.215.14")
        XCTAssertEqual(try CurlHTTPClient.resolveEntry("https://u@xn--bcher-kva.example:8443?q", addresses: ["93.184.215.14"]),
                       "xn--bcher-kva.example:8443:93.184.215.14", "the host as written, not IDNA-decoded")
        XCTAssertNil(try CurlHTTPClient.resolveEntry("https://[::1]/x", addresses: ["0:0::1"]), "a literal needs no resolving")
        XCTAssertNil(try CurlHTTPClient.resolveEntry("https://[::1]:8443/x", addresses: ["::1"]))
        XCTAssertThrowsError(try CurlHTTPClient.resolveEntry("https://[::1]/x", addresses: ["93.184.215.14"]), "a literal elsewhere")
        XCTAssertThrowsError(try CurlHTTPClient.resolveEntry("https://app.example/x", addresses: ["app.example"]))
        XCTAssertThrowsError(try CurlHTTPClient.resolveEntry("https://app.example./x", addresses: ["93.184.215.14"]))
        let literal = try transport.send(UpstreamRequest(url: server.baseURL + "/literal", pinnedAddresses: ["127.0.0.1"]))
        XCTAssertEqual(literal.status, 200)
        XCTAssertThrowsError(try transport.send(UpstreamRequest(url: server.baseURL + "/literal", pinnedAddresses: ["10.0.0.1"])))
    }

    func testAWholeLookupThroughTheRealTransport() throws {
        let server = try ScriptedHTTPServer { r in
            let id = "http://\(r.headers["host"] ?? "")/client.json"
            return .init(body: "{\"client_id\":\"\(id)\",\"client_name\":\"Rig\",\"redirect_uris\":[\"http://127.0.0.1/cb\"]}")
        }
        defer { server.stop() }
        var config = OAuthConfig()
        config.allowPrivateMetadataHostsForTesting = true
        let dir = ClientDirectory(config: config, store: store, http: ClientMetadataDocumentFetcher.transport(for: config), now: { [clock] in clock.now })
        let client = try XCTUnwrap(dir.client(id: server.baseURL + "/client.json"))
        XCTAssertEqual(client.clientName, "Rig")
        XCTAssertEqual(server.requestCount, 1)
    }
}

// MARK: - Directory and client authentication

final class ClientDirectoryTests: XCTestCase {
    let clock = TestClock<Double>(1_800_000_000)
    let store = InMemoryOAuthStore()
    let http = ScriptedHTTPClient { _ in UpstreamResponse(status: 500) }
    let secret = "a-very-long-configured-secret-0123456789"

    func directory() -> ClientDirectory {
        var config = OAuthConfig()
        config.clients = [
            .init(clientId: "ops-console", clientName: "Ops console", redirectURIs: ["https://ops.example/cb"],
                  secretSHA256: SHA256Digest(Array(secret.utf8)).hex, authMethod: .clientSecretBasic),
            .init(clientId: "cli", clientName: "CLI", redirectURIs: ["http://127.0.0.1/cb"], secretSHA256: nil, authMethod: .none),
        ]
        return ClientDirectory(config: config, store: store, http: http, resolver: FixedResolver(table: [:]), now: { [clock] in clock.now })
    }

    func testConfigClientsThenTheStoreThenNothing() throws {
        let dir = directory()
        let ops = try XCTUnwrap(dir.client(id: "ops-console"))
        XCTAssertEqual(ops.source, .config)
        XCTAssertEqual(ops.authMethod, .clientSecretBasic)
        XCTAssertEqual(ops.grantTypes, ["authorization_code", "refresh_token"])
        XCTAssertEqual(try dir.client(id: "cli")?.authMethod, OAuthClient.AuthMethod.none)

        let registered = ClientRegistration(config: OAuthConfig(), store: store, now: { [clock] in clock.now })
            .register(body: JSONWriter.serialize(["redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none"]))
        let id = try XCTUnwrap(registered.body["client_id"]?.stringValue)
        XCTAssertEqual(try dir.client(id: id)?.source, .registered)
        XCTAssertNil(try dir.client(id: "mcpc_00000000000000000000000000000000"))
        XCTAssertNil(try dir.client(id: ""))
        XCTAssertEqual(http.count, 0, "ids that are not URLs are never fetched")

        store.failure = StoreError("locked")
        XCTAssertEqual(try dir.client(id: "ops-console")?.clientId, "ops-console", "config clients need no store")
        XCTAssertThrowsError(try dir.client(id: id)) { XCTAssertEqual($0 as? ClientLookupError, .storeUnavailable("locked")) }
    }

    func testAStoredRecordThatDoesNotReadIsNoClient() throws {
        try store.saveOAuthClient(OAuthClientRecord(clientId: "mcpc_broken", secretSHA256: nil, metadataJSON: "{\"redirect_uris\":5}",
                                                    source: .registered, createdAt: 0, expiresAt: nil))
        try store.saveOAuthClient(OAuthClientRecord(clientId: "mcpc_nosecret", secretSHA256: nil,
                                                    metadataJSON: "{\"redirect_uris\":[\"https://a.example/cb\"],\"grant_types\":[\"authorization_code\"],\"response_types\":[\"code\"],\"token_endpoint_auth_method\":\"client_secret_basic\"}",
                                                    source: .registered, createdAt: 0, expiresAt: nil))
        XCTAssertNil(try directory().client(id: "mcpc_broken"))
        XCTAssertNil(try directory().client(id: "mcpc_nosecret"), "a confidential client without a digest could never authenticate")
    }

    static func basic(_ id: String, _ secret: String) -> String {
        let encode = { (s: String) in s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
        return "Basic " + Base64.encode(Array("\(encode(id)):\(encode(secret))".utf8))
    }

    func testPublicClientsSendNoSecret() throws {
        let dir = directory()
        let cli = try XCTUnwrap(dir.client(id: "cli"))
        XCTAssertEqual(dir.authenticate(cli, form: ["client_id": "cli"], authorization: nil), .authenticated)
        XCTAssertEqual(dir.authenticate(cli, form: ["client_id": "cli", "client_secret": ""], authorization: nil), .authenticated)
        XCTAssertEqual(dir.authenticate(cli, form: ["client_id": "cli", "client_secret": "guess"], authorization: nil),
                       .failed(description: "this client is public (token_endpoint_auth_method none): it must not send a client secret",
                               usedBasic: false))
        XCTAssertEqual(dir.authenticate(cli, form: [:], authorization: Self.basic("cli", "guess")),
                       .failed(description: "this client is public (token_endpoint_auth_method none): it must not send a client secret",
                               usedBasic: true))
        XCTAssertEqual(dir.authenticate(cli, form: ["client_id": "ops-console"], authorization: nil),
                       .failed(description: "client_id is not the client of this request", usedBasic: false))
    }

    func testBasicClients() throws {
        let dir = directory()
        let ops = try XCTUnwrap(dir.client(id: "ops-console"))
        XCTAssertEqual(dir.authenticate(ops, form: [:], authorization: Self.basic("ops-console", secret)), .authenticated)
        XCTAssertEqual(dir.authenticate(ops, form: ["client_id": "ops-console"], authorization: Self.basic("ops-console", secret)),
                       .authenticated)
        XCTAssertEqual(dir.authenticate(ops, form: [:], authorization: Self.basic("ops-console", secret + "x")),
                       .failed(description: "the client secret is wrong", usedBasic: true))
        XCTAssertEqual(dir.authenticate(ops, form: [:], authorization: Self.basic("ops-console", "")),
                       .failed(description: "the client secret is wrong", usedBasic: true))
        XCTAssertEqual(dir.authenticate(ops, form: ["client_id": "ops-console"], authorization: nil),
                       .failed(description: "client authentication is required: send the client secret with HTTP Basic", usedBasic: false))
        XCTAssertEqual(dir.authenticate(ops, form: ["client_id": "ops-console", "client_secret": secret], authorization: nil),
                       .failed(description: "this client authenticates with HTTP Basic (client_secret_basic), not client_secret in the form",
                               usedBasic: false))
        XCTAssertEqual(dir.authenticate(ops, form: ["client_secret": secret], authorization: Self.basic("ops-console", secret)),
                       .failed(description: "use one client authentication method, not both HTTP Basic and client_secret", usedBasic: true))
        XCTAssertEqual(dir.authenticate(ops, form: [:], authorization: Self.basic("cli", secret)),
                       .failed(description: "the client id in the Authorization header is not the client of this request", usedBasic: true))
        XCTAssertEqual(dir.authenticate(ops, form: [:], authorization: "Bearer abc"),
                       .failed(description: "the Authorization header is not HTTP Basic client authentication", usedBasic: false))
        XCTAssertEqual(dir.authenticate(ops, form: [:], authorization: "Basic !!!"),
                       .failed(description: "the Authorization header is not HTTP Basic client authentication", usedBasic: true))
    }

    func testBasicCredentialsAreFormDecoded() {
        // RFC 6749 §2.3.1: both parts are application/x-www-form-urlencoded before base64.
        XCTAssertEqual(BasicCredentials(header: "Basic " + Base64.encode(Array("my%20client:s%3Acret+x".utf8))),
                       BasicCredentials(header: Self.basic("my client", "s:cret x")))
        let c = BasicCredentials(header: "basic " + Base64.encode(Array("id:a:b".utf8)))
        XCTAssertEqual(c?.clientId, "id")
        XCTAssertEqual(c?.secret, "a:b")
        XCTAssertNil(BasicCredentials(header: "Basic " + Base64.encode(Array("no-colon".utf8))))
        XCTAssertNil(BasicCredentials(header: "Basic " + Base64.encode(Array(":secret".utf8))))
    }

    func testPostClients() throws {
        let (_, answer) = ClientRegistration(config: OAuthConfig(), store: store, now: { [clock] in clock.now })
            .register(body: JSONWriter.serialize(["redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_post"]))
        let id = try XCTUnwrap(answer["client_id"]?.stringValue), secret = try XCTUnwrap(answer["client_secret"]?.stringValue)
        let dir = directory()
        let client = try XCTUnwrap(dir.client(id: id))
        XCTAssertEqual(dir.authenticate(client, form: ["client_id": id, "client_secret": secret], authorization: nil), .authenticated)
        XCTAssertEqual(dir.authenticate(client, form: ["client_id": id, "client_secret": "mcps_" + String(repeating: "0", count: 64)],
                                        authorization: nil),
                       .failed(description: "the client secret is wrong", usedBasic: false))
        XCTAssertEqual(dir.authenticate(client, form: ["client_id": id], authorization: nil),
                       .failed(description: "client authentication is required: client_secret is missing", usedBasic: false))
        XCTAssertEqual(dir.authenticate(client, form: [:], authorization: Self.basic(id, secret)),
                       .failed(description: "this client authenticates with client_secret in the form (client_secret_post), not HTTP Basic",
                               usedBasic: true))
    }
}

// MARK: - Addresses and URLs

final class ClientURLAndAddressTests: XCTestCase {
    func testPublicAddresses() {
        for address in ["93.184.215.14", "8.8.8.8", "100.128.0.1", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            XCTAssertTrue(PublicAddressRule.isPublic(address), address)
        }
        for address in ["127.0.0.53", "10.0.0.1", "100.127.255.255", "172.31.255.255", "192.0.2.1", "203.0.113.9", "240.0.0.1",
                        "::1", "fc00::1", "fdff::1", "fe80::1%eth0", "fec0::1", "2002:a00:1::1", "2001::1", "100::1", "not-an-address"] {
            XCTAssertFalse(PublicAddressRule.isPublic(address), address)
        }
    }

    func testTheSystemResolver() throws {
        XCTAssertEqual(try SystemHostResolver().addresses(of: "127.0.0.1"), ["127.0.0.1"])
        XCTAssertEqual(try SystemHostResolver().addresses(of: "::1"), ["::1"])
        XCTAssertThrowsError(try SystemHostResolver().addresses(of: "nothing.invalid"))
    }

    func testStrictURLParts() throws {
        let u = try XCTUnwrap(StrictURL("https://user@Host.example:8443/a/b?q=1#f"))
        XCTAssertEqual(u.scheme, "https")
        XCTAssertEqual(u.host, "Host.example")
        XCTAssertEqual(u.port, 8443)
        XCTAssertEqual(u.path, "/a/b")
        XCTAssertEqual(u.query, "q=1")
        XCTAssertEqual(u.fragment, "f")
        XCTAssertTrue(u.hasUserInfo)
        let v6 = try XCTUnwrap(StrictURL("http://[::1]:80"))
        XCTAssertEqual(v6.host, "[::1]")
        XCTAssertEqual(v6.bareHost, "::1")
        XCTAssertEqual(v6.path, "")
        XCTAssertTrue(v6.isLoopback)
        for bad in ["", "https://", "https://h:/x", "https://h:65536/", "https://[::1/", "https://[zz]/", "https://h\\x/", "h.example/x",
                    "1https://h/", "https://h é/"] {
            XCTAssertNil(StrictURL(bad), bad)
        }
    }
}
