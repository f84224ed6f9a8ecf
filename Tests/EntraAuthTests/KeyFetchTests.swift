import Foundation
import MCPGatewayTesting
import MCPJSON
import UpstreamHTTP
import XCTest
@testable import EntraAuth

/// Discovery, JWKS fetching, the shared file cache and its rate limits,
/// against a fake HTTP server on 127.0.0.1.
final class KeyFetchTests: XCTestCase {
    var server: ScriptedHTTPServer!
    var stateDir = ""
    var clock = TestClock<Int64>()
    let tenant = Fixture.tenantA
    var discoveryPath: String { "/\(tenant)/v2.0/.well-known/openid-configuration" }
    var keysPath: String { "/\(tenant)/discovery/v2.0/keys" }

    override func setUpWithError() throws {
        server = try ScriptedHTTPServer()
        stateDir = makeTempDirectory() + "/state"
        clock = TestClock<Int64>()
        server.set(discoveryPath, body: #"{"issuer":"\#(server.baseURL)/\#(tenant)/v2.0","jwks_uri":"\#(server.baseURL)\#(keysPath)"}"#)
        publish([Fixture.key])
    }

    override func tearDown() {
        server.stop()
        try? FileManager.default.removeItem(atPath: (stateDir as NSString).deletingLastPathComponent)
    }

    func publish(_ keys: [DevSigningKey], status: Int = 200, delay: Double = 0) {
        var entries: [JSONValue] = keys.map { k in
            var jwk = k.publicJWK
            jwk["alg"] = nil  // Entra's JWKS carries no alg; RSA keys are then bound to RS256
            jwk["x5t"] = .string(k.keyID)
            jwk["issuer"] = .string("\(server.baseURL)/{tenantid}/v2.0")
            return .object(jwk)
        }
        entries.append(.object(JSONObject(["kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"])))  // skipped, not an error
        server.set(keysPath, status: status, body: JSONWriter.string(.object(JSONObject(["keys": .array(entries)]))), delay: delay)
    }

    func configuration() -> EntraConfiguration {
        var c = EntraConfiguration(audiences: [Fixture.audience], allowedTenants: [tenant], stateDirectory: stateDir)
        c.authority = server.baseURL
        c.http.allowInsecureHTTPForTesting = true
        c.http.totalTimeoutMilliseconds = 3000
        c.allowShortIntervalsForTesting = true
        c.jwksRefreshIntervalSeconds = 3600
        return c
    }

    func makeVerifier() throws -> TokenVerifier {
        let c = configuration()
        return try TokenVerifier(configuration: c, http: CurlHTTPFetcher(options: c.http), clock: clock.closure)
    }

    func token(_ key: DevSigningKey = Fixture.key, uti: String = UUID().uuidString) -> String {
        var c = Fixture.claims(tid: tenant, iss: "\(server.baseURL)/\(tenant)/v2.0", now: clock.now)
        c["uti"] = .string(uti)
        return Fixture.token(header: Fixture.header(kid: key.keyID), claims: c, signedBy: key)
    }

    // MARK: -

    func testDiscoveryThenJWKSThenSharedFile() throws {
        let v = try makeVerifier()
        XCTAssertEqual(try v.verify(token()).tenantId, tenant)
        XCTAssertEqual(server.hits(discoveryPath), 1)
        XCTAssertEqual(server.hits(keysPath), 1)
        XCTAssertNoThrow(try v.verify(token()))
        XCTAssertEqual(server.requestCount, 2, "keys come from memory after the first fetch")

        let files = try FileManager.default.contentsOfDirectory(atPath: stateDir)
        let cache = try XCTUnwrap(files.first { $0.hasPrefix("jwks-") && $0.hasSuffix(".json") && !$0.hasSuffix(".fetch.json") })
        let record = try XCTUnwrap(files.first { $0.hasPrefix("jwks-") && $0.hasSuffix(".fetch.json") })
        XCTAssertEqual(StateFiles.mode(stateDir + "/" + cache), 0o600)
        XCTAssertEqual(StateFiles.mode(stateDir + "/" + record), 0o600)
        XCTAssertEqual(StateFiles.mode(stateDir), 0o700)
        XCTAssertFalse(files.contains { $0.contains(".tmp.") }, "no temp files left behind")
        let doc = try JSONParser.parse([UInt8](FileManager.default.contents(atPath: stateDir + "/" + cache)!))
        XCTAssertEqual(doc["jwks_uri"]?.stringValue, server.baseURL + keysPath)

        // Another process (a new instance) or a restart reuses the file: no network.
        let other = try makeVerifier()
        XCTAssertNoThrow(try other.verify(token()))
        XCTAssertEqual(server.requestCount, 2)
    }

    func testConcurrentColdStartFetchesOnce() throws {
        let v = try makeVerifier()
        let tokens = (0..<32).map { _ in token() }
        let lock = NSLock()
        var failures = 0
        DispatchQueue.concurrentPerform(iterations: 8) { w in
            for i in stride(from: w, to: tokens.count, by: 8) where (try? v.verify(tokens[i])) == nil {
                lock.lock(); failures += 1; lock.unlock()
            }
        }
        XCTAssertEqual(failures, 0)
        XCTAssertEqual(server.hits(discoveryPath), 1)
        XCTAssertEqual(server.hits(keysPath), 1)
    }

    func testRotationAndRateLimitedRefetch() throws {
        let v = try makeVerifier()
        XCTAssertNoThrow(try v.verify(token()))
        // The provider rotates in a new key; a token signed by it forces one refetch.
        publish([Fixture.key, Fixture.otherKey])
        clock.advance(60)
        XCTAssertEqual(try v.verify(token(Fixture.otherKey)).tenantId, tenant)
        XCTAssertEqual(server.hits(keysPath), 2)

        // A kid nobody publishes: refetch already used within 5 minutes, so no traffic.
        let stranger = try DevSigningKey.generate()
        clock.advance(60)
        XCTAssertRefused(v, token(stranger), .unknownSigningKey)
        XCTAssertEqual(server.hits(keysPath), 2)

        // The limit is in the shared directory, so another process honours it too.
        let other = try makeVerifier()
        XCTAssertRefused(other, token(stranger), .unknownSigningKey)
        XCTAssertEqual(server.hits(keysPath), 2)

        clock.advance(301)
        XCTAssertRefused(v, token(stranger), .unknownSigningKey)
        XCTAssertEqual(server.hits(keysPath), 3, "one refetch after the interval")
    }

    /// A token naming a kid nobody publishes, signed by a key we hold (the kid is looked up first).
    func madeUpKidToken() -> String {
        Fixture.token(header: Fixture.header(kid: UUID().uuidString), claims: Fixture.claims(tid: tenant, iss: "\(server.baseURL)/\(tenant)/v2.0", now: clock.now),
                      signedBy: Fixture.key)
    }

    /// While one slow key fetch runs, every other made-up kid is refused before it ends: in this
    /// process at once, from another process after the short wait, and the provider sees one fetch.
    func testABurstOfUnknownKidsDoesNotWaitForTheRunningFetch() throws {
        let v = try makeVerifier()
        XCTAssertNoThrow(try v.verify(token()))
        let other = try makeVerifier()  // another process, with the keys from the shared file
        XCTAssertNoThrow(try other.verify(token()))
        publish([Fixture.key], delay: 2)
        let fetchEnded = NSLock()
        var ended = false
        let slow = DispatchSemaphore(value: 0)
        Thread {
            XCTAssertRefused(v, self.madeUpKidToken(), .unknownSigningKey)  // starts the one refetch
            fetchEnded.withLock { ended = true }
            slow.signal()
        }.start()
        while server.hits(keysPath) < 2 { usleep(5000) }  // the refetch has reached the provider

        let lock = NSLock()
        var answeredBeforeTheFetchEnded = 0
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            XCTAssertRefused(i % 2 == 0 ? v : other, madeUpKidToken(), .unknownSigningKey)
            let stillRunning = fetchEnded.withLock { !ended }
            lock.withLock { if stillRunning { answeredBeforeTheFetchEnded += 1 } }
        }
        XCTAssertEqual(answeredBeforeTheFetchEnded, 16, "no request waited for the fetch")
        XCTAssertEqual(slow.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(server.hits(keysPath), 2, "one refetch for the whole burst")
        XCTAssertNoThrow(try v.verify(token()), "the provider's keys still serve")
    }

    func testRemovedKeyIsRefusedAfterScheduledRefresh() throws {
        let v = try makeVerifier()
        XCTAssertNoThrow(try v.verify(token()))
        publish([Fixture.otherKey])
        clock.advance(3601)
        XCTAssertRefused(v, token(), .unknownSigningKey)
        XCTAssertNoThrow(try v.verify(token(Fixture.otherKey)))
    }

    func testRefreshFailureKeepsLastGoodKeys() throws {
        let v = try makeVerifier()
        XCTAssertNoThrow(try v.verify(token()))
        server.set(keysPath, status: 500, body: "{}")
        server.set(discoveryPath, status: 503, body: "{}")
        clock.advance(3601)  // stale: a scheduled refresh is tried and fails
        XCTAssertNoThrow(try v.verify(token()))
        let hitsAfterFailure = server.requestCount
        XCTAssertEqual(server.hits(keysPath), 2, "discovery failed, the cached jwks_uri was still tried")
        // Within the retry interval nothing is tried again.
        clock.advance(5)
        XCTAssertNoThrow(try v.verify(token()))
        XCTAssertEqual(server.requestCount, hitsAfterFailure)
        // A garbage key set is a failure too, never a replacement.
        server.set(keysPath, body: #"{"keys":[]}"#)
        clock.advance(60)
        XCTAssertNoThrow(try v.verify(token()))
        XCTAssertEqual(server.hits(keysPath), 3)
        // The endpoint recovers: the next attempt after the retry interval succeeds.
        publish([Fixture.key])
        clock.advance(60)
        XCTAssertNoThrow(try v.verify(token()))
        XCTAssertEqual(server.hits(keysPath), 4)
    }

    func testEndpointDownWithNoKeysIsUnavailable() throws {
        server.set(discoveryPath, status: 500, body: "{}")
        let v = try makeVerifier()
        let t = token()
        XCTAssertRefused(v, t, .signingKeysUnavailable)
        XCTAssertEqual(TokenVerificationError.signingKeysUnavailable.httpStatus, 503)
        // Backing off: an immediate retry does not hit the network.
        let hits = server.requestCount
        XCTAssertRefused(v, t, .signingKeysUnavailable)
        XCTAssertEqual(server.requestCount, hits)
        // Nothing listening at all.
        server.stop()
        server = try ScriptedHTTPServer()  // for tearDown
        clock.advance(31)
        XCTAssertRefused(v, t, .signingKeysUnavailable)
    }

    func testOtherProcessRefreshIsPickedUpFromTheFile() throws {
        let a = try makeVerifier()
        XCTAssertNoThrow(try a.verify(token()))
        publish([Fixture.key, Fixture.otherKey])
        let b = try makeVerifier()
        clock.advance(10)
        XCTAssertNoThrow(try b.verify(token(Fixture.otherKey)))  // b refetches and rewrites the file
        let hits = server.requestCount
        XCTAssertNoThrow(try a.verify(token(Fixture.otherKey)))  // a sees the new file
        XCTAssertEqual(server.requestCount, hits)
    }

    /// The cache path the first verifier wrote, then overwritten with a key set naming `key`, as
    /// someone else who can write in the directory could.
    func plantCache(signedBy key: DevSigningKey) throws -> String {
        let files = try FileManager.default.contentsOfDirectory(atPath: stateDir)
        let name = try XCTUnwrap(files.first { $0.hasPrefix("jwks-") && $0.hasSuffix(".json") && !$0.hasSuffix(".fetch.json") })
        var jwk = key.publicJWK
        jwk["alg"] = nil
        let doc: JSONValue = ["fetched_at": .integer(Int(clock.now)), "jwks_uri": .string(server.baseURL + keysPath),
                              "jwks": ["keys": [.object(jwk)]]]
        let path = stateDir + "/" + name
        try Data(JSONWriter.serialize(doc)).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testACacheFileOthersCouldHaveWrittenIsNotTrustedAsSigningKeys() throws {
        XCTAssertNoThrow(try makeVerifier().verify(token()))
        XCTAssertEqual(server.hits(keysPath), 1)
        // A directory the group may write to: a member plants a key of their own in the cache.
        XCTAssertEqual(chmod(stateDir, 0o770), 0)
        let planted = try plantCache(signedBy: Fixture.otherKey)
        XCTAssertEqual(chmod(planted, 0o600), 0)
        let next = try makeVerifier()  // another process
        XCTAssertRefused(next, token(Fixture.otherKey), .unknownSigningKey)
        XCTAssertEqual(server.hits(keysPath), 3, "fetched instead of read from the cache, then one unknown-kid refetch")
        XCTAssertNoThrow(try next.verify(token()), "the provider's own keys serve")

        // A private directory, but a cache file others may write.
        XCTAssertEqual(chmod(stateDir, 0o700), 0)
        XCTAssertEqual(chmod(try plantCache(signedBy: Fixture.otherKey), 0o666), 0)
        XCTAssertRefused(try makeVerifier(), token(Fixture.otherKey), .unknownSigningKey)

        // A link in place of the cache is not followed.
        let elsewhere = (stateDir as NSString).deletingLastPathComponent + "/elsewhere.json"
        let link = try plantCache(signedBy: Fixture.otherKey)
        XCTAssertEqual(rename(link, elsewhere), 0)
        XCTAssertEqual(symlink(elsewhere, link), 0)
        XCTAssertRefused(try makeVerifier(), token(Fixture.otherKey), .unknownSigningKey)
    }

    func testACacheFileOfAnotherUserIsNotTrusted() throws {
        try XCTSkipUnless(geteuid() == 0, "only root can give a file away")
        XCTAssertNoThrow(try makeVerifier().verify(token()))
        let planted = try plantCache(signedBy: Fixture.otherKey)
        XCTAssertEqual(chmod(planted, 0o600), 0)
        XCTAssertEqual(chown(planted, 65534, 65534), 0)
        XCTAssertRefused(try makeVerifier(), token(Fixture.otherKey), .unknownSigningKey)
        // The keys fetched instead replaced it with a file of this user's.
        var st = stat()
        XCTAssertEqual(lstat(planted, &st), 0)
        XCTAssertEqual(st.st_uid, geteuid())
    }

    func testPlainHTTPRefusedWithoutTestingFlag() throws {
        var c = configuration()
        c.http.allowInsecureHTTPForTesting = false
        XCTAssertThrowsError(try TokenVerifier(configuration: c, http: CurlHTTPFetcher(options: c.http), clock: clock.closure)) {
            XCTAssertTrue("\($0)".contains("https"))
        }
        XCTAssertThrowsError(try CurlHTTPFetcher().get(server.baseURL + keysPath)) {
            XCTAssertEqual($0 as? HTTPFetchError, .insecureURL)
        }
        XCTAssertEqual(server.requestCount, 0)
        // An https discovery document may not point the keys at plain http.
        final class Stub: HTTPFetching {
            func get(_ url: String) throws -> FetchedResponse {
                FetchedResponse(status: 200, body: Array(#"{"jwks_uri":"http://keys.example/keys"}"#.utf8))
            }
        }
        XCTAssertThrowsError(try JWKSFetcher(http: Stub(), options: HTTPFetchOptions())
            .discover(authority: "https://login.example", tenant: tenant)) {
            XCTAssertEqual($0 as? HTTPFetchError, .insecureURL)
        }
    }

    func testResponseSizeCap() throws {
        server.set("/big", body: String(repeating: " ", count: 200_000) + "{}")
        var o = HTTPFetchOptions()
        o.allowInsecureHTTPForTesting = true
        o.maxResponseBytes = 64 << 10
        XCTAssertThrowsError(try CurlHTTPFetcher(options: o).get(server.baseURL + "/big")) {
            XCTAssertEqual($0 as? HTTPFetchError, .responseTooLarge)
        }
        o.maxResponseBytes = 1 << 20
        XCTAssertEqual(try CurlHTTPFetcher(options: o).get(server.baseURL + "/big").body.count, 200_002)
    }

    func testIntervalsAreBoundedOutsideTests() {
        var c = configuration()
        c.allowShortIntervalsForTesting = false
        c.http.allowInsecureHTTPForTesting = true
        XCTAssertThrowsError(try c.validate())  // 1 h refresh
        c.jwksRefreshIntervalSeconds = 12 * 3600
        XCTAssertNoThrow(try c.validate())
        c.jwksRefreshIntervalSeconds = 25 * 3600
        XCTAssertThrowsError(try c.validate())
        c.jwksRefreshIntervalSeconds = 24 * 3600
        c.unknownKidRefetchIntervalSeconds = 10
        XCTAssertThrowsError(try c.validate())
        c.unknownKidRefetchIntervalSeconds = 300
        c.allowedTenants = ["contoso.onmicrosoft.com"]
        XCTAssertThrowsError(try c.validate())
        c.allowedTenants = []
        XCTAssertThrowsError(try c.validate())
        c.acceptAnyTenant = true
        XCTAssertNoThrow(try c.validate())
    }
}
