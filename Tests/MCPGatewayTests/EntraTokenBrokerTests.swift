import EntraAuth
import Foundation
import GatewayCrypto
import MCPGatewayTesting
import MCPJSON
import XCTest
@testable import MCPGateway
@testable import UpstreamHTTP

/// An in-process HTTPClient that records requests and answers from a script.
final class RecordingHTTPClient: HTTPClient, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var requests: [UpstreamRequest] = []
    var answer: @Sendable (UpstreamRequest) throws -> UpstreamResponse

    init(_ answer: @escaping @Sendable (UpstreamRequest) throws -> UpstreamResponse) { self.answer = answer }

    func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
        lock.lock(); requests.append(request); let a = answer; lock.unlock()
        return try a(request)
    }

    var count: Int { lock.lock(); defer { lock.unlock() }; return requests.count }

    static func form(_ r: UpstreamRequest) -> [String: String] {
        var out: [String: String] = [:]
        for pair in String(decoding: r.body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
            out[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        return out
    }
}

func jsonResponse(_ status: Int, _ body: JSONValue, headers: [(String, String)] = []) -> UpstreamResponse {
    UpstreamResponse(status: status, headers: [("content-type", "application/json")] + headers, body: JSONWriter.serialize(body))
}

final class EntraTokenBrokerTests: XCTestCase {
    let tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    let clientId = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
    let scope = "https://analysis.windows.net/powerbi/api/.default"

    private func broker(_ http: HTTPClient, clock: TestClock<Double> = TestClock(), credential: ClientCredential? = nil) -> EntraTokenBroker {
        EntraTokenBroker(clientId: clientId, authority: "https://login.example.test/", credential: credential ?? .secret(ClientSecret("s3cret-value")),
                         http: http, clock: { clock.now })
    }

    func testOnBehalfOfRequestShapeAndCache() throws {
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["token_type": "Bearer", "expires_in": 3600, "access_token": "down-1"]) }
        let clock = TestClock<Double>()
        let b = broker(http, clock: clock)
        let req = TokenRequest(tenantId: tenant, scopes: [scope], grant: .onBehalfOf(userAssertion: "incoming.jwt.one", userKey: "\(tenant)/u1"))
        XCTAssertEqual(try b.token(req).accessToken, "down-1")
        let sent = http.requests[0]
        XCTAssertEqual(sent.method, "POST")
        XCTAssertEqual(sent.url, "https://login.example.test/\(tenant)/oauth2/v2.0/token")
        let form = RecordingHTTPClient.form(sent)
        XCTAssertEqual(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer")
        XCTAssertEqual(form["requested_token_use"], "on_behalf_of")
        XCTAssertEqual(form["assertion"], "incoming.jwt.one")
        XCTAssertEqual(form["client_id"], clientId)
        XCTAssertEqual(form["client_secret"], "s3cret-value")
        XCTAssertEqual(form["scope"], scope)

        // Cached for the same (tenant, user, scopes, assertion); a new assertion is a new exchange.
        XCTAssertEqual(try b.token(req).accessToken, "down-1")
        XCTAssertEqual(http.count, 1)
        _ = try b.token(TokenRequest(tenantId: tenant, scopes: [scope], grant: .onBehalfOf(userAssertion: "incoming.jwt.two", userKey: "\(tenant)/u1")))
        XCTAssertEqual(http.count, 2)
        // Within the margin before expiry the token is fetched again.
        clock.now += 3600 - 200
        _ = try b.token(req)
        XCTAssertEqual(http.count, 3)
    }

    func testClientCredentialsAreCachedPerTenant() throws {
        let http = RecordingHTTPClient { r in
            jsonResponse(200, ["expires_in": "3599", "access_token": .string("app-" + r.url.split(separator: "/")[2])])
        }
        let b = broker(http)
        let other = "0b7e9c39-8f15-4a5e-9a57-2f5c2e1f4d11"
        _ = try b.token(TokenRequest(tenantId: tenant, scopes: [scope], grant: .clientCredentials))
        _ = try b.token(TokenRequest(tenantId: tenant, scopes: [scope], grant: .clientCredentials))
        _ = try b.token(TokenRequest(tenantId: other, scopes: [scope], grant: .clientCredentials))
        XCTAssertEqual(http.count, 2)
        XCTAssertEqual(RecordingHTTPClient.form(http.requests[0])["grant_type"], "client_credentials")
        XCTAssertNil(RecordingHTTPClient.form(http.requests[0])["assertion"])
        XCTAssertTrue(http.requests[1].url.contains(other))
    }

    func testOtherAuthoritiesShareTheCredentialAndTheCache() throws {
        let echoURL: @Sendable (UpstreamRequest) -> UpstreamResponse = { r in
            jsonResponse(200, ["expires_in": 3600, "access_token": .string(r.url)])
        }
        let http = RecordingHTTPClient(echoURL)
        let gov = RecordingHTTPClient(echoURL)
        let b = broker(http)
        let req = TokenRequest(tenantId: tenant, scopes: [scope], grant: .clientCredentials)
        XCTAssertEqual(try b.atAuthority("https://login.example.us/", http: gov).token(req).accessToken,
                       "https://login.example.us/\(tenant)/oauth2/v2.0/token")
        XCTAssertEqual(RecordingHTTPClient.form(gov.requests[0])["client_secret"], "s3cret-value")
        XCTAssertEqual(try b.token(req).accessToken, "https://login.example.test/\(tenant)/oauth2/v2.0/token")
        // One cache, keyed by authority too: asking either again goes to neither endpoint.
        XCTAssertEqual(try b.atAuthority("https://login.example.us", http: gov).token(req).accessToken,
                       "https://login.example.us/\(tenant)/oauth2/v2.0/token")
        XCTAssertEqual(try b.token(req).accessToken, "https://login.example.test/\(tenant)/oauth2/v2.0/token")
        XCTAssertEqual(http.count, 1)
        XCTAssertEqual(gov.count, 1)
    }

    func testTenantMustBeAGUIDBeforeItGoesIntoTheURL() {
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["access_token": "x"]) }
        XCTAssertThrowsError(try broker(http).token(TokenRequest(tenantId: "evil/../x", scopes: [scope], grant: .clientCredentials)))
        XCTAssertEqual(http.count, 0)
    }

    func testErrorsAreMappedForPeople() {
        func fail(_ status: Int, _ body: JSONValue) -> TokenBrokerError? {
            let http = RecordingHTTPClient { _ in jsonResponse(status, body) }
            do { _ = try broker(http).token(TokenRequest(tenantId: tenant, scopes: [scope], grant: .clientCredentials)); return nil } catch {
                return error as? TokenBrokerError
            }
        }
        let consent = fail(400, ["error": "invalid_grant", "suberror": "consent_required", "error_codes": [65001],
                                 "error_description": "AADSTS65001: The user or administrator has not consented to use the application with ID 'x'.\r\nTrace ID: abc\r\nCorrelation ID: def"])
        guard case .consentRequired(let scopes, let detail)? = consent else { return XCTFail("\(String(describing: consent))") }
        XCTAssertEqual(scopes, [scope])
        XCTAssertFalse(detail.contains("Trace ID"))
        XCTAssertTrue(consent!.description.contains("An administrator must grant consent for \(scope)"))

        let claims = #"{"access_token":{"polids":{"essential":true,"values":["p1"]}}}"#
        let interaction = fail(400, ["error": "interaction_required", "error_description": "AADSTS50079: MFA needed.",
                                     "error_codes": [50079], "claims": .string(claims)])
        guard case .interactionRequired(let c, _)? = interaction else { return XCTFail("\(String(describing: interaction))") }
        XCTAssertEqual(c, claims)

        guard case .delegatedAccessNeedsUser? = fail(400, ["error": "unauthorized_client", "error_codes": [7000114],
                                                           "error_description": "AADSTS7000114: not allowed to make application on-behalf-of calls."])
        else { return XCTFail() }
        guard case .rejected("invalid_client", let d)? = fail(401, ["error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."])
        else { return XCTFail() }
        XCTAssertTrue(d.contains("check the server's client id, secret or certificate"))
        guard case .unavailable? = fail(503, .string("<html>down</html>")) else { return XCTFail() }
        guard case .unavailable? = fail(200, ["token_type": "Bearer"]) else { return XCTFail() }
    }

    func testTransportFailureIsUnavailableAndNamesNoSecret() {
        let http = RecordingHTTPClient { _ in throw UpstreamError.timeout(host: "login.example.test", seconds: 10) }
        XCTAssertThrowsError(try broker(http).token(TokenRequest(tenantId: tenant, scopes: [scope],
                                                                  grant: .onBehalfOf(userAssertion: "secret.user.token", userKey: "k")))) { e in
            guard case TokenBrokerError.unavailable(let d) = e else { return XCTFail("\(e)") }
            XCTAssertFalse("\(e)".contains("s3cret") || "\(e)".contains("secret.user.token"))
            XCTAssertTrue(d.contains("login.example.test"))
        }
    }

    func testSecretIsHiddenFromDescriptions() {
        let c = ClientCredential.secret(ClientSecret("s3cret-value"))
        XCTAssertFalse("\(c)".contains("s3cret"))
        XCTAssertFalse(String(reflecting: c).contains("s3cret"))
    }

    func testSecretFromFileMustBePrivateAndFromEnvMustBeSet() throws {
        let dir = NSTemporaryDirectory() + "broker-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/secret"
        _ = FileManager.default.createFile(atPath: path, contents: Array("abc\n".utf8).withUnsafeBytes { Data($0) }, attributes: [.posixPermissions: 0o644])
        var cfg = CredentialConfig()
        cfg.clientSecretFile = path
        XCTAssertThrowsError(try ClientCredential.load(cfg)) { XCTAssertTrue("\($0)".contains("chmod 600")) }
        chmod(path, 0o600)
        guard case .secret(let s) = try ClientCredential.load(cfg) else { return XCTFail() }
        XCTAssertEqual(s.value, "abc")
        cfg.clientSecretFile = nil
        cfg.clientSecretEnv = "PBI_TEST_SECRET"
        XCTAssertThrowsError(try ClientCredential.load(cfg, environment: [:])) { XCTAssertTrue("\($0)".contains("PBI_TEST_SECRET")) }
        guard case .secret(let e) = try ClientCredential.load(cfg, environment: ["PBI_TEST_SECRET": "xyz"]) else { return XCTFail() }
        XCTAssertEqual(e.value, "xyz")
    }

    /// A real certificate and key from the openssl tool; the assertion's signature is checked by openssl too.
    func testCertificateAssertionIsSignedPS256WithThumbprint() throws {
        let dir = NSTemporaryDirectory() + "broker-cert-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
                                     "-days", "1", "-subj", "/CN=mcp-fcgi-test"])
        chmod(dir + "/key.pem", 0o600)
        try run("/usr/bin/openssl", ["x509", "-in", dir + "/cert.pem", "-pubkey", "-noout", "-out", dir + "/pub.pem"])
        try run("/usr/bin/openssl", ["x509", "-in", dir + "/cert.pem", "-outform", "DER", "-out", dir + "/cert.der"])

        var cfg = CredentialConfig()
        cfg.certificateFile = dir + "/cert.pem"
        cfg.privateKeyFile = dir + "/key.pem"
        let credential = try ClientCredential.load(cfg)
        let http = RecordingHTTPClient { _ in jsonResponse(200, ["expires_in": 3600, "access_token": "t"]) }
        _ = try broker(http, credential: credential).token(TokenRequest(tenantId: tenant, scopes: [scope], grant: .clientCredentials))
        let form = RecordingHTTPClient.form(http.requests[0])
        XCTAssertNil(form["client_secret"])
        XCTAssertEqual(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        let parts = try XCTUnwrap(form["client_assertion"]).split(separator: ".").map(String.init)
        XCTAssertEqual(parts.count, 3)
        let header = try JSONParser.parse(Base64.decodeURL(Array(parts[0].utf8))!)
        let claims = try JSONParser.parse(Base64.decodeURL(Array(parts[1].utf8))!)
        XCTAssertEqual(header["alg"]?.stringValue, "PS256")
        let der = try Data(contentsOf: URL(fileURLWithPath: dir + "/cert.der"))
        XCTAssertEqual(header["x5t#S256"]?.stringValue, Base64.encodeURL(SHA256Digest(Array(der)).bytes))
        XCTAssertEqual(claims["aud"]?.stringValue, "https://login.example.test/\(tenant)/oauth2/v2.0/token")
        XCTAssertEqual(claims["iss"]?.stringValue, clientId)
        XCTAssertEqual(claims["sub"]?.stringValue, clientId)
        XCTAssertEqual((claims["exp"]?.intValue ?? 0) - (claims["nbf"]?.intValue ?? 0), 600)

        try Data((parts[0] + "." + parts[1]).utf8).write(to: URL(fileURLWithPath: dir + "/msg"))
        try Data(Base64.decodeURL(Array(parts[2].utf8))!).write(to: URL(fileURLWithPath: dir + "/sig"))
        try run("/usr/bin/openssl", ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                                     "-verify", dir + "/pub.pem", "-signature", dir + "/sig", dir + "/msg"])
        // The same message with a flipped byte must not verify: the check above can fail.
        try Data((parts[0] + "." + parts[1] + "x").utf8).write(to: URL(fileURLWithPath: dir + "/msg"))
        XCTAssertThrowsError(try run("/usr/bin/openssl", ["dgst", "-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32",
                                                          "-verify", dir + "/pub.pem", "-signature", dir + "/sig", dir + "/msg"]))
    }

    private func run(_ tool: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw POSIXError(.EINVAL) }
    }
}
