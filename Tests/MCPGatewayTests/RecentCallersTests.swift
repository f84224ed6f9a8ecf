import EntraAuth
import GatewayStore
import MCPJSON
import XCTest
@testable import MCPGateway

/// A caller is built once per principal, token and authenticator on a thread, and never handed
/// to a request that differs in any of them.
final class RecentCallersTests: XCTestCase {
    final class Owner {}
    /// A count the closures under test may bump (from one thread at a time, or under the lock).
    final class Count: @unchecked Sendable { var n = 0 }

    static func principal(_ oid: String, roles: [String] = ["MCP.User"], expires: Int64 = 2_000_000_000) -> Principal {
        Principal(tenantId: "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", objectId: oid, subject: oid, issuer: "iss", clientAppId: "app",
                  scopes: [], roles: roles, groups: nil, tokenVersion: "2.0", isAppOnly: false, expiresAt: expires,
                  displayName: nil, userPrincipalName: nil)
    }

    func testACallerIsReusedOnlyForTheSamePrincipalTokenAndAuthenticator() {
        let owner = Owner(), other = Owner()
        var builds = 0
        func caller(_ owner: Owner, _ p: Principal, _ token: String?) -> Caller {
            RecentCallers.caller(of: owner, principal: p, token: token) {
                builds += 1
                return Caller(key: "\(p.objectId) \(builds)", permissions: Set(p.roles), principal: p, bearerToken: token) { [:] }
            }
        }
        let a = Self.principal("u1")
        let first = caller(owner, a, "t1")
        XCTAssertEqual(caller(owner, a, "t1").key, first.key, "the same request again: reused")
        XCTAssertEqual(builds, 1)
        XCTAssertEqual(caller(owner, a, "t2").bearerToken, "t2", "another token: built anew")
        XCTAssertEqual(caller(other, a, "t1").key, "u1 3", "another authenticator: built anew")
        XCTAssertEqual(caller(owner, Self.principal("u1", roles: ["MCP.Admin"]), "t1").permissions, ["MCP.Admin"],
                       "another principal (new roles): built anew")
        XCTAssertEqual(caller(owner, Self.principal("u1", expires: 2_000_000_001), "t1").key, "u1 5")
        XCTAssertEqual(builds, 5)
        // Past the capacity the oldest go; a caller gone is built again, never confused with another.
        for i in 0..<RecentCallers.capacity { _ = caller(owner, Self.principal("other-\(i)"), "t") }
        XCTAssertEqual(caller(owner, a, "t1").key, "u1 \(builds)")
    }

    func testEachThreadKeepsItsOwn() {
        let owner = Owner()
        let p = Self.principal("u2")
        let built = Count()
        let lock = NSLock()
        let threads = (0..<3).map { _ in
            Thread {
                for _ in 0..<10 {
                    _ = RecentCallers.caller(of: owner, principal: p, token: "t") {
                        lock.withLock { built.n += 1 }
                        return Caller(key: "k", permissions: [], principal: p) { [:] }
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        let deadline = Date(timeIntervalSinceNow: 10)
        while lock.withLock({ built.n }) < 3 && Date() < deadline { usleep(1_000) }
        usleep(50_000)
        XCTAssertEqual(lock.withLock { built.n }, 3, "one build per thread, none shared")
    }

    func testTheIdentityIsDescribedOnce() {
        let described = Count()
        let caller = Caller(key: "k", permissions: []) {
            described.n += 1
            return ["authenticated": true]
        }
        XCTAssertEqual(caller.identity, ["authenticated": true])
        XCTAssertEqual(caller.identity, ["authenticated": true])
        XCTAssertEqual(described.n, 1)
    }

    /// Admission's buckets are made once per caller and limits, and again for other limits
    /// (another instance's or a reloaded configuration's).
    func testACallersRateBucketsAreMadeOncePerLimits() {
        let caller = Caller(key: "k", permissions: []) { [:] }
        let made = Count()
        func buckets(_ limits: GatewayConfig.RateLimits) -> [String] {
            caller.rateBuckets(for: limits) {
                made.n += 1
                return [RateBucket(key: "user:\(limits.userPerMinute)", perMinute: Double(limits.userPerMinute), burst: 1)]
            }.map(\.key)
        }
        var limits = GatewayConfig.RateLimits()
        XCTAssertEqual(buckets(limits), ["user:120"])
        XCTAssertEqual(buckets(limits), ["user:120"])
        XCTAssertEqual(made.n, 1)
        limits.userPerMinute = 7
        XCTAssertEqual(buckets(limits), ["user:7"])
        XCTAssertEqual(made.n, 2)
        limits.tenantBurst = 9
        XCTAssertEqual(buckets(limits), ["user:7"])
        XCTAssertEqual(made.n, 3, "any field of the limits makes them anew")
    }
}
