import Foundation
import GatewayCrypto
import XCTest
@testable import EntraAuth

/// The verified-token cache: what it returns, what it evicts, and that entries share the
/// values they have in common instead of each keeping its own copy.
final class TokenCacheTests: XCTestCase {
    /// A fresh heap copy of `s` each call, as the JSON parser gives for every token.
    func copy(_ s: String) -> String { String(decoding: Array(s.utf8), as: UTF8.self) }

    func principal(user: String, tenant: String = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", subject: String? = nil,
                   roles: [String] = []) -> Principal {
        Principal(tenantId: copy(tenant), objectId: copy(user), subject: copy(subject ?? user),
                  issuer: copy("https://login.microsoftonline.com/\(tenant)/v2.0"),
                  clientAppId: copy("00000000-0000-0000-0000-00000000dev0"), scopes: [copy("mcp.tools"), copy("offline_access")],
                  roles: roles.map(copy), groups: nil, tokenVersion: "2.0", isAppOnly: false, expiresAt: 2_000_000_000,
                  displayName: copy("Ada Lovelace, Analytical Engines"), userPrincipalName: nil)
    }

    func key(_ n: Int) -> SHA256Digest { SHA256Digest(Array("token-\(n)".utf8)) }

    /// Where a native string's bytes live: equal addresses mean one shared copy.
    func storage(_ s: String) -> UnsafeRawPointer? {
        var s = s
        return s.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    }

    func testReturnsWhatWasInsertedUntilItsTime() {
        let cache = TokenCache(capacity: 10)
        let p = principal(user: "11111111-1111-4111-8111-111111111111", subject: "pairwise-subject-of-this-user", roles: ["MCP.Admin"])
        cache.insert(key(1), principal: p, validUntil: 100)
        XCTAssertEqual(cache.lookup(key(1), now: 99), p)
        XCTAssertNil(cache.lookup(key(1), now: 100))
        XCTAssertNil(cache.lookup(key(2), now: 0))
    }

    func testEntriesShareTheirCommonValues() throws {
        let cache = TokenCache(capacity: 10)
        cache.insert(key(1), principal: principal(user: "11111111-1111-4111-8111-111111111111"), validUntil: 100)
        cache.insert(key(2), principal: principal(user: "22222222-2222-4222-8222-222222222222"), validUntil: 100)
        let a = try XCTUnwrap(cache.lookup(key(1), now: 0)), b = try XCTUnwrap(cache.lookup(key(2), now: 0))
        XCTAssertEqual(storage(a.tenantId), storage(b.tenantId))
        XCTAssertEqual(storage(a.issuer), storage(b.issuer))
        XCTAssertEqual(storage(try XCTUnwrap(a.clientAppId)), storage(try XCTUnwrap(b.clientAppId)))
        XCTAssertEqual(storage(a.scopes[1]), storage(b.scopes[1]))
        a.scopes.withUnsafeBufferPointer { x in b.scopes.withUnsafeBufferPointer { y in XCTAssertEqual(x.baseAddress, y.baseAddress) } }
        // What is each user's own stays apart; a subject equal to the object id is kept once.
        XCTAssertNotEqual(storage(a.objectId), storage(b.objectId))
        XCTAssertEqual(storage(a.objectId), storage(a.subject))
        XCTAssertNotEqual(storage(try XCTUnwrap(a.displayName)), storage(try XCTUnwrap(b.displayName)))
        XCTAssertEqual(a.objectId, "11111111-1111-4111-8111-111111111111")
        XCTAssertEqual(b.subject, "22222222-2222-4222-8222-222222222222")
    }

    func testManyTenantsStayCorrectPastTheSharingLimit() throws {
        let cache = TokenCache(capacity: 2 * SharedValues.limit)
        var inserted: [Principal] = []
        for i in 0..<(2 * SharedValues.limit) {
            let tenant = String(format: "aaaaaaaa-aaaa-4aaa-8aaa-%012d", i)
            let p = principal(user: String(format: "11111111-1111-4111-8111-%012d", i), tenant: tenant)
            inserted.append(p)
            cache.insert(key(i), principal: p, validUntil: 100)
        }
        for (i, p) in inserted.enumerated() { XCTAssertEqual(cache.lookup(key(i), now: 0), p) }
    }

    func testEvictsTheLeastRecentlyUsed() {
        let cache = TokenCache(capacity: 2)
        for i in 1...2 { cache.insert(key(i), principal: principal(user: "user-\(i)-0000-0000-0000-000000000000"), validUntil: 100) }
        XCTAssertNotNil(cache.lookup(key(1), now: 0))  // 2 is now the least recently used
        cache.insert(key(3), principal: principal(user: "user-3-0000-0000-0000-000000000000"), validUntil: 100)
        XCTAssertNil(cache.lookup(key(2), now: 0))
        XCTAssertEqual(cache.lookup(key(1), now: 0)?.objectId, "user-1-0000-0000-0000-000000000000")
        XCTAssertEqual(cache.lookup(key(3), now: 0)?.objectId, "user-3-0000-0000-0000-000000000000")
        XCTAssertEqual(cache.count, 2)
    }
}
