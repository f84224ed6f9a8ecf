import EntraAuth
import Foundation
import GatewayStore
import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// API keys: made once, kept only as a keyed hash, refused precisely when revoked, expired or
/// mistyped, and served as an app-only caller `apikey:<id>` whose every use is audited.
final class APIKeyTests: XCTestCase {
    var now: Int64 = 1_800_000_000

    func makeKey(_ f: GatewayFixture, roles: [String] = ["MCP.User"], expires: Int64? = nil) throws -> (String, APIKeyRecord) {
        let issuer = try APIKeyIssuer(stateDirectory: f.stateDir)
        let made = try issuer.create(name: "nightly export", tenant: GatewayFixture.tenant, roles: roles,
                                     expires: expires ?? now + 86_400, now: now)
        try XCTUnwrap(f.instance.stores.apiKeys).addAPIKey(made.record)
        return made
    }

    func fixture() throws -> GatewayFixture {
        try GatewayFixture(auth: ["providers": [["type": "entra"], ["type": "api_key"]]])
    }

    func provider(_ f: GatewayFixture) throws -> APIKeyProvider {
        APIKeyProvider(issuer: try APIKeyIssuer(stateDirectory: f.stateDir), store: try XCTUnwrap(f.instance.stores.apiKeys),
                       allowedTenants: [GatewayFixture.tenant], acceptAnyTenant: false, clock: { self.now })
    }

    func check(_ p: APIKeyProvider, _ key: String) -> Result<Principal, TokenVerificationError> {
        var hit = false
        return p.check(key, cacheHit: &hit)
    }

    func testKeyShapeAndWhatTheStoreKeeps() throws {
        let f = try fixture()
        let (key, record) = try makeKey(f)
        XCTAssertTrue(key.hasPrefix("mcpk_\(record.id)_"))
        XCTAssertEqual(key.utf8.count, 5 + 16 + 1 + 43)
        XCTAssertEqual(Base64.decodeURL(Array(key.utf8.suffix(43)))?.count, 32)
        XCTAssertEqual(record.hmac.count, 64)
        let database = try Data(contentsOf: URL(fileURLWithPath: f.instance.config.resolvedStorePath))
            + ((try? Data(contentsOf: URL(fileURLWithPath: f.instance.config.resolvedStorePath + "-wal"))) ?? Data())
        XCTAssertNil(database.range(of: Data(key.utf8.suffix(43))), "the secret part must not be stored")
        var st = stat()
        XCTAssertEqual(stat(f.stateDir + "/" + APIKeyIssuer.secretFileName, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        let other = try makeKey(f).0
        XCTAssertNotEqual(other, key)
    }

    func testAcceptedKeyIsAnAppOnlyCallerOfItsTenant() throws {
        let f = try fixture()
        let (key, record) = try makeKey(f)
        let p = try check(provider(f), key).get()
        XCTAssertEqual(p.objectId, "apikey:\(record.id)")
        XCTAssertEqual(p.provider, "apikey")
        XCTAssertTrue(p.isAppOnly)
        XCTAssertEqual(p.tenantId, GatewayFixture.tenant)
        XCTAssertEqual(p.roles, ["MCP.User"])
    }

    func testRevokedExpiredAndMistypedKeys() throws {
        let f = try fixture()
        let p = try provider(f)
        let (key, record) = try makeKey(f)
        // One character of the secret changed: same id, wrong hash.
        var bytes = Array(key.utf8)
        bytes[bytes.count - 5] = bytes[bytes.count - 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertEqual(check(p, String(decoding: bytes, as: UTF8.self)).failure, .invalidAPIKey)
        XCTAssertEqual(check(p, String(key.dropLast())).failure, .invalidAPIKey)
        XCTAssertEqual(check(p, "mcpk_" + String(repeating: "0", count: 16) + "_" + String(key.suffix(43))).failure, .invalidAPIKey)
        XCTAssertEqual(check(p, key.uppercased()).failure, .invalidAPIKey)
        let (expiring, _) = try makeKey(f, expires: now + 10)
        now += 10
        XCTAssertEqual(check(p, expiring).failure, .expired)
        XCTAssertNoThrow(try check(p, key).get())
        XCTAssertTrue(try XCTUnwrap(f.instance.stores.apiKeys).revokeAPIKey(id: record.id, at: now))
        XCTAssertEqual(check(p, key).failure, .revokedAPIKey)
        XCTAssertFalse(try XCTUnwrap(f.instance.stores.apiKeys).revokeAPIKey(id: record.id, at: now))
    }

    func testEveryUseIsAuditedWithTheKeysIdAndNeverTheKey() throws {
        now = Int64(Date().timeIntervalSince1970)
        let f = try fixture()
        let (key, record) = try makeKey(f)
        let r = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": [:]]), token: key)
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(try XCTUnwrap(f.instance.stores.apiKeys).revokeAPIKey(id: record.id, at: now))
        let refused = f.post(GatewayFixture.legacyBody("ping"), token: key)
        XCTAssertEqual(refused.status, 401)
        XCTAssertTrue(refused.header("WWW-Authenticate")?.contains("The API key has been revoked.") == true)
        let records = try f.instance.stores.audit.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(records.first?.user, "apikey:\(record.id)")
        XCTAssertEqual(records.first?.clientApp, "apikey:\(record.id)")
        XCTAssertEqual(records.last?.reason, "revokedAPIKey")
        XCTAssertFalse(records.map { JSONWriter.string($0.json) }.joined().contains(String(key.suffix(43))))
    }

    func testKeysAreRefusedWhereTheProviderIsNotConfigured() throws {
        let f = try GatewayFixture()
        let (key, _) = try makeKey(f)
        XCTAssertEqual(f.post(GatewayFixture.legacyBody("ping"), token: key).status, 401)
    }
}

extension Result {
    var failure: Failure? { if case .failure(let e) = self { return e } else { return nil } }
}
