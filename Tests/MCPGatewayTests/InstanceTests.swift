import GatewaySupport
import EntraAuth
import Foundation
import MCPJSON
import XCTest
@testable import MCPGateway

/// Several isolated instances in one process, tenant records, and the trusted front proxy.
final class InstanceTests: XCTestCase {
    static let tenantA = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
    static let tenantB = "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
    static let user = "11111111-1111-4111-8111-111111111111"
    var stateDir = ""

    override func setUp() {
        stateDir = NSTemporaryDirectory() + "mcp-fcgi-instances-" + UUID().uuidString
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: stateDir) }

    func instance(_ name: String, tenant: String, extra: [String: JSONValue] = [:]) -> JSONValue {
        var o = JSONObject(pairs: [
            ("server", ["mcp_path": .string("/\(name)/mcp"), "public_url": .string("https://mcp.example.test/\(name)/mcp")]),
            ("auth", ["mode": "development", "client_id": .string("api://\(name)")]),
            ("tenants", [tenant: ["name": .string("Org of \(name)")]]),
        ])
        for (k, v) in extra { o[k] = v }
        return .object(o)
    }

    func root(_ instances: [String: JSONValue], extra: [String: JSONValue] = [:]) -> JSONObject {
        var o = JSONObject(pairs: [
            ("server", ["name": "shared", "workers": 4]),
            ("state_dir", .string(stateDir)),
            ("rate_limits", ["user_per_minute": 0, "tenant_per_minute": 0]),
            ("instances", .object(JSONObject(pairs: instances.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))),
        ])
        for (k, v) in extra { o[k] = v }
        return o
    }

    func errors(_ o: JSONObject) -> [String] {
        do {
            _ = try ProcessConfig.parse(o)
            return []
        } catch let e as ConfigErrors {
            return e.errors.map(\.description)
        } catch {
            return ["\(error)"]
        }
    }

    func token(_ router: Gateway, instance: String, tenant: String, roles: [String] = []) throws -> String {
        let minter = DevTokenMinter(key: try DevSigningKey.loadOrCreate(stateDirectory: stateDir))
        return try minter.mint(tenantId: tenant, objectId: Self.user, audience: "api://\(instance)", scopes: ["mcp.tools"],
                               roles: roles, ttl: 600)
    }

    func whoami(_ router: Gateway, path: String, token: String?, headers: [String: String] = [:],
                remote: String = "127.0.0.1") -> HTTPResponse {
        var h = HTTPHeaders(["content-type": "application/json", "accept": "application/json, text/event-stream",
                             "mcp-protocol-version": "2025-06-18"])
        for (k, v) in headers { h[k] = v }
        if let token { h["authorization"] = "Bearer \(token)" }
        let body = JSONWriter.serialize(["jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                         "params": ["name": "whoami", "arguments": [:]]])
        return router.respond(to: HTTPRequest(method: "POST", path: path, headers: h, body: body, remoteAddress: remote))
    }

    // MARK: - Configuration

    func testInstancesInheritTopLevelSectionsAndGetTheirOwnStores() throws {
        let c = try ProcessConfig.parse(root(["client-a": instance("client-a", tenant: Self.tenantA),
                                              "client-b": instance("client-b", tenant: Self.tenantB,
                                                                   extra: ["rate_limits": ["user_per_minute": 5]])]))
        XCTAssertEqual(c.instances.map(\.instanceName), ["client-a", "client-b"])
        let (a, b) = (c.instances[0], c.instances[1])
        XCTAssertEqual(a.server.mcpPath, "/client-a/mcp")
        XCTAssertEqual(a.server.name, "shared")
        XCTAssertEqual(c.workers, 4)
        XCTAssertEqual(a.rateLimits.userPerMinute, 0)
        XCTAssertEqual(b.rateLimits.userPerMinute, 5)
        XCTAssertNotEqual(a.resolvedStorePath, b.resolvedStorePath)
        XCTAssertEqual(a.auth.allowedTenants, [Self.tenantA])
        XCTAssertEqual(a.tenants[Self.tenantA]?.name, "Org of client-a")
        XCTAssertNil(a.tenants[Self.tenantB])
    }

    func testInstanceMistakesAreReportedWithTheirPath() {
        let shared = instance("client-b", tenant: Self.tenantB, extra: ["auth": ["mode": "development", "client_id": "api://client-a"]])
        var problems = errors(root(["client-a": instance("client-a", tenant: Self.tenantA), "client-b": shared]))
        XCTAssertTrue(problems.contains { $0.hasPrefix("instances.client-b.auth.audiences") && $0.contains("own app registration") }, "\(problems)")

        let samePath = instance("client-b", tenant: Self.tenantB, extra: ["server": ["mcp_path": "/client-a/mcp",
                                                                                   "public_url": "https://x.test/client-a/mcp"]])
        problems = errors(root(["client-a": instance("client-a", tenant: Self.tenantA), "client-b": samePath]))
        XCTAssertTrue(problems.contains { $0.hasPrefix("instances.client-b.server.mcp_path") }, "\(problems)")

        let processWide = instance("client-a", tenant: Self.tenantA, extra: ["state_dir": "/tmp/x", "logging": ["level": "debug"]])
        problems = errors(root(["client-a": processWide]))
        XCTAssertTrue(problems.contains("instances.client-a.state_dir: is a process-wide setting: set it at the top level"), "\(problems)")

        problems = errors(root(["Client A": instance("client-a", tenant: Self.tenantA)]))
        XCTAssertTrue(problems.contains { $0.hasPrefix("instances.Client A") }, "\(problems)")

        problems = errors(root(["client-a": instance("client-a", tenant: Self.tenantA, extra: ["auth": ["mode": "development", "client_id": "api://client-a", "audiences": 7]])]))
        XCTAssertTrue(problems.contains { $0.hasPrefix("instances.client-a.auth.audiences") }, "\(problems)")
    }

    func testRunningWorkersIsProcessWideAndDefaultsToTheProcessors() throws {
        var c = try ProcessConfig.parse(root(["client-a": instance("client-a", tenant: Self.tenantA)]))
        XCTAssertEqual(c.runningWorkers, max(1, ProcessInfo.processInfo.activeProcessorCount))
        c = try ProcessConfig.parse(root(["client-a": instance("client-a", tenant: Self.tenantA)],
                                         extra: ["server": ["name": "shared", "workers": 8, "running_workers": 3]]))
        XCTAssertEqual(c.workers, 8)
        XCTAssertEqual(c.runningWorkers, 3)
        var problems = errors(root(["client-a": instance("client-a", tenant: Self.tenantA)],
                                   extra: ["server": ["name": "shared", "running_workers": 0]]))
        XCTAssertTrue(problems.contains { $0.hasSuffix("server.running_workers: must be between 1 and 256, not 0") }, "\(problems)")
        problems = errors(root(["client-a": instance("client-a", tenant: Self.tenantA, extra: ["server": ["running_workers": 2]])]))
        XCTAssertTrue(problems.contains { $0.hasPrefix("instances.client-a.server.running_workers") && $0.contains("process-wide") }, "\(problems)")
    }

    func testTenantRecordsAreValidated() {
        var o = root(["a": instance("a", tenant: Self.tenantA, extra: ["tenants": ["contoso": ["name": "Contoso"]]])])
        XCTAssertTrue(errors(o).contains { $0.contains("tenants.contoso") && $0.contains("GUID") }, "\(errors(o))")
        o = root(["a": instance("a", tenant: Self.tenantA, extra: ["tenants": [Self.tenantA: ["nmae": "typo"]]])])
        let problems = errors(o)
        XCTAssertTrue(problems.contains { $0.contains("tenants.\(Self.tenantA).nmae") && $0.contains("unknown setting") }, "\(problems)")
        XCTAssertTrue(problems.contains { $0.contains("tenants.\(Self.tenantA).name") && $0.contains("required") }, "\(problems)")
    }

    // MARK: - Isolation

    func testATokenForOneInstanceIsRefusedByAnother() throws {
        let router = try Gateway.make(config: ProcessConfig.parse(root([
            "client-a": instance("client-a", tenant: Self.tenantA),
            "client-b": instance("client-b", tenant: Self.tenantB)])))
        let forA = try token(router, instance: "client-a", tenant: Self.tenantA)
        let ok = whoami(router, path: "/client-a/mcp", token: forA)
        XCTAssertEqual(ok.status, 200)
        let me = try XCTUnwrap(ok.json?["result"]?["structuredContent"])
        XCTAssertEqual(me["instance"], "client-a")
        XCTAssertEqual(me["tenant_name"], "Org of client-a")

        let wrongInstance = whoami(router, path: "/client-b/mcp", token: forA)
        XCTAssertEqual(wrongInstance.status, 401)
        // Even a token with the right audience for B but A's tenant is refused: B does not allow that tenant.
        let crossTenant = try token(router, instance: "client-b", tenant: Self.tenantA)
        XCTAssertEqual(whoami(router, path: "/client-b/mcp", token: crossTenant).status, 401)

        // Each instance records its own requests in its own store, with its name.
        let a = router.instances[0], b = router.instances[1]
        let trailA = try a.stores.audit.audit(since: 0, tenant: nil, limit: 10)
        let trailB = try b.stores.audit.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trailA.count, 1)
        XCTAssertEqual(trailA.first?.instance, "client-a")
        XCTAssertEqual(trailB.count, 2)
        XCTAssertEqual(Set(trailB.map(\.decision)), ["denied"])
        XCTAssertEqual(trailB.first?.instance, "client-b")

        // Each instance's requests and refusals are counted under its own name.
        let metrics = router.respond(to: HTTPRequest(method: "GET", path: "/metrics", remoteAddress: "127.0.0.1"))
        XCTAssertEqual(metrics.status, 200)
        let text = String(decoding: metrics.body, as: UTF8.self)
        XCTAssertTrue(text.contains("mcp_requests_total{instance=\"client-a\",method=\"tools/call\",tool=\"whoami\",status=\"200\"} 1"), text)
        XCTAssertTrue(text.contains("mcp_requests_total{instance=\"client-b\",method=\"tools/call\",tool=\"whoami\",status=\"401\"} 2"), text)
        XCTAssertTrue(text.contains("mcp_auth_failures_total{instance=\"client-b\","), text)
        XCTAssertFalse(text.contains("mcp_auth_failures_total{instance=\"client-a\","), text)
    }

    func testSystemStatusShowsOnlyTheCallingInstancesFiguresAndErrors() throws {
        let router = try Gateway.make(config: ProcessConfig.parse(root([
            "client-a": instance("client-a", tenant: Self.tenantA),
            "client-b": instance("client-b", tenant: Self.tenantB)])))
        let forB = try token(router, instance: "client-b", tenant: Self.tenantB)
        for _ in 0..<3 { XCTAssertEqual(whoami(router, path: "/client-b/mcp", token: forB).status, 200) }
        XCTAssertEqual(whoami(router, path: "/client-b/mcp", token: "not-a-token").status, 401)
        router.instances[1].operations.metrics.recordUpstreamError("powerbi", "HTTP 503 from b.example")
        router.instances[0].operations.metrics.recordUpstreamError("powerbi", "HTTP 502 from a.example")

        let admin = try token(router, instance: "client-a", tenant: Self.tenantA, roles: ["MCP.Admin"])
        let call = GatewayFixture.legacyBody("tools/call", params: ["name": "system_status", "arguments": [:]])
        var h = HTTPHeaders(["content-type": "application/json", "accept": "application/json, text/event-stream"])
        h["authorization"] = "Bearer \(admin)"
        let r = router.respond(to: HTTPRequest(method: "POST", path: "/client-a/mcp", headers: h, body: JSONWriter.serialize(call)))
        XCTAssertEqual(r.status, 200)
        let s = try XCTUnwrap(r.json?["result"]?["structuredContent"])
        // Only A's own call so far (B's four requests and its refusal are B's).
        XCTAssertEqual(s["requests"]?["mcp"]?.intValue, 0)
        XCTAssertEqual(s["requests"]?["auth_failures"]?.intValue, 0)
        XCTAssertEqual(s["token_cache"]?["misses"]?.intValue, 1)
        XCTAssertEqual(s["last_upstream_errors"]?.arrayValue?.compactMap { $0["error"]?.stringValue }, ["powerbi: HTTP 502 from a.example"])
        let b = router.instances[1].operations.status()
        XCTAssertEqual(b["requests"]?["mcp"]?.intValue, 4)
        XCTAssertEqual(b["requests"]?["auth_failures"]?.intValue, 1)
        XCTAssertEqual(b["last_upstream_errors"]?.arrayValue?.compactMap { $0["error"]?.stringValue }, ["powerbi: HTTP 503 from b.example"])
    }

    func testEachInstanceHasItsOwnMetadataAndNoSharedMe() throws {
        let router = try Gateway.make(config: ProcessConfig.parse(root([
            "client-a": instance("client-a", tenant: Self.tenantA),
            "client-b": instance("client-b", tenant: Self.tenantB)])))
        let meta = router.respond(to: HTTPRequest(method: "GET", path: "/.well-known/oauth-protected-resource/client-b/mcp"))
        XCTAssertEqual(meta.status, 200)
        XCTAssertEqual(meta.json?["resource"], "https://mcp.example.test/client-b/mcp")
        XCTAssertEqual(meta.json?["authorization_servers"], [.string("\(DevTokenMinter.issuerAuthority)/\(Self.tenantB)/v2.0")])
        XCTAssertEqual(router.respond(to: HTTPRequest(method: "GET", path: "/.well-known/oauth-protected-resource")).status, 404)
        XCTAssertEqual(router.respond(to: HTTPRequest(method: "GET", path: "/me")).status, 404)
        XCTAssertEqual(router.respond(to: HTTPRequest(method: "GET", path: "/health")).status, 200)
        XCTAssertEqual(router.respond(to: HTTPRequest(method: "POST", path: "/mcp")).status, 404)
    }

    func testATenantRecordsOwnRateLimitsApplyToItsUsersOnly() throws {
        var a = instance("a", tenant: Self.tenantA).objectValue!
        a["tenants"] = [Self.tenantA: ["name": "Small", "rate_limits": ["user_per_minute": 1, "user_burst": 2]],
                        Self.tenantB: ["name": "Large"]]
        let router = try Gateway.make(config: ProcessConfig.parse(root(["a": .object(a)])))
        let small = try token(router, instance: "a", tenant: Self.tenantA)
        let large = try token(router, instance: "a", tenant: Self.tenantB)
        XCTAssertEqual((0..<3).map { _ in whoami(router, path: "/a/mcp", token: small).status }, [200, 200, 429])
        XCTAssertEqual((0..<3).map { _ in whoami(router, path: "/a/mcp", token: large).status }, [200, 200, 200])
    }

    // MARK: - Trusted front proxy

    /// A proxy at 10.20.0.0/16 and ::1 whose users are in tenant A; `asserts` names the headers it sets itself.
    func proxyRouter(enabled: Bool = true, asserts: [String] = ["assert_roles", "assert_name"]) throws -> Gateway {
        var proxy = JSONObject(pairs: [("enabled", .bool(enabled)), ("sources", ["10.20.0.0/16", "::1"])])
        if !asserts.contains("assert_tenant") { proxy["default_tenant"] = .string(Self.tenantA) }
        for key in asserts { proxy[key] = true }
        let a = instance("a", tenant: Self.tenantA, extra: ["trusted_proxy": .object(proxy)])
        return try Gateway.make(config: ProcessConfig.parse(root(["a": a])))
    }

    func testIdentityFromTheTrustedProxyIsAccepted() throws {
        let router = try proxyRouter()
        let r = whoami(router, path: "/a/mcp", token: nil, headers: ["x-authenticated-user-oid": Self.user.uppercased(),
                                                                      "x-authenticated-roles": "MCP.User,MCP.Admin",
                                                                      "x-authenticated-user-name": "Ada"], remote: "10.20.3.4")
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        let me = try XCTUnwrap(r.json?["result"]?["structuredContent"])
        XCTAssertEqual(me["objectId"], .string(Self.user))
        XCTAssertEqual(me["tenantId"], .string(Self.tenantA))
        XCTAssertEqual(me["issuer"], "trusted-proxy")
        XCTAssertEqual(me["permissions"], ["admin", "user"])
        XCTAssertEqual(me["displayName"], "Ada")
    }

    func testIdentityHeadersFromAnyOtherPeerAreStrippedAndIgnored() throws {
        let router = try proxyRouter()
        let forged = ["x-authenticated-user-oid": Self.user, "x-authenticated-roles": "MCP.Admin"]
        XCTAssertEqual(whoami(router, path: "/a/mcp", token: nil, headers: forged, remote: "10.21.0.1").status, 401)
        XCTAssertEqual(whoami(router, path: "/a/mcp", token: nil, headers: forged, remote: "127.0.0.1").status, 401)
        XCTAssertEqual(whoami(router, path: "/a/mcp", token: nil, headers: forged, remote: "not-an-address").status, 401)
        // With a valid token from an untrusted peer, the forged roles grant nothing.
        let t = try token(router, instance: "a", tenant: Self.tenantA)
        let r = whoami(router, path: "/a/mcp", token: t, headers: forged, remote: "192.0.2.1")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json?["result"]?["structuredContent"]?["permissions"], [])
        XCTAssertEqual(r.json?["result"]?["structuredContent"]?["issuer"], .string("\(DevTokenMinter.issuerAuthority)/\(Self.tenantA)/v2.0"))
        // Off by default: even the proxy's own address is not believed.
        XCTAssertEqual(whoami(try proxyRouter(enabled: false), path: "/a/mcp", token: nil, headers: forged, remote: "10.20.3.4").status, 401)
    }

    func testTheProxyMustAssertAUsableIdentity() throws {
        let router = try proxyRouter(asserts: ["assert_tenant"])
        let badUser = whoami(router, path: "/a/mcp", token: nil, headers: ["x-authenticated-user-oid": "ada@example.com"], remote: "::1")
        XCTAssertEqual(badUser.status, 403)
        let otherTenant = whoami(router, path: "/a/mcp", token: nil, headers: ["x-authenticated-user-oid": Self.user,
                                                                               "x-authenticated-tenant-id": Self.tenantB], remote: "::1")
        XCTAssertEqual(otherTenant.status, 403)
        XCTAssertTrue(String(decoding: otherTenant.body, as: UTF8.self).contains("not allowed"))
        let trail = try router.instances[0].stores.audit.audit(since: 0, tenant: nil, limit: 10)
        XCTAssertEqual(trail.map(\.reason), ["proxy_bad_user", "tenant_not_allowed"])
    }

    func testRolesAndNameAreBelievedOnlyWhenTheProxyAssertsThem() throws {
        let router = try proxyRouter(asserts: [])
        let r = whoami(router, path: "/a/mcp", token: nil, headers: ["x-authenticated-user-oid": Self.user,
                                                                      "x-authenticated-roles": "MCP.Admin",
                                                                      "x-authenticated-user-name": "Eve"], remote: "10.20.3.4")
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        let me = try XCTUnwrap(r.json?["result"]?["structuredContent"])
        XCTAssertEqual(me["objectId"], .string(Self.user))
        XCTAssertEqual(me["permissions"], [])
        XCTAssertEqual(me["displayName"] ?? .null, .null)
    }

    func testHeadersTheProxyDoesNotAssertAreStrippedEvenFromTheProxy() throws {
        let config = try ProcessConfig.parse(root(["a": instance("a", tenant: Self.tenantA, extra: ["trusted_proxy": [
            "enabled": true, "sources": ["10.20.0.0/16"], "default_tenant": .string(Self.tenantA), "assert_roles": true]])]))
        let proxy = config.instances[0].trustedProxy
        var request = HTTPRequest(method: "POST", path: "/mcp", headers: HTTPHeaders([
            "x-authenticated-user-oid": Self.user, "x-authenticated-tenant-id": Self.tenantB,
            "x-authenticated-roles": "MCP.User", "x-authenticated-user-name": "Eve"]), remoteAddress: "10.20.3.4")
        StripUntrustedAssertions(proxy: proxy).strip(&request)
        XCTAssertEqual(request.headers["x-authenticated-user-oid"], Self.user)
        XCTAssertEqual(request.headers["x-authenticated-roles"], "MCP.User")
        XCTAssertNil(request.headers["x-authenticated-tenant-id"])
        XCTAssertNil(request.headers["x-authenticated-user-name"])
    }

    func testTheTenantHeaderIsIgnoredWhenADefaultTenantIsSet() throws {
        let router = try proxyRouter()
        let r = whoami(router, path: "/a/mcp", token: nil, headers: ["x-authenticated-user-oid": Self.user,
                                                                      "x-authenticated-tenant-id": Self.tenantB], remote: "10.20.3.4")
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        XCTAssertEqual(r.json?["result"]?["structuredContent"]?["tenantId"], .string(Self.tenantA))
    }

    func testMergedIdentityValuesAreRefused() throws {
        let router = try proxyRouter(asserts: ["assert_tenant", "assert_roles"])
        let user = ["x-authenticated-tenant-id": Self.tenantA]
        let cases: [[String: String]] = [
            user.merging(["x-authenticated-user-oid": "\(Self.user), \(Self.user)"]) { $1 },
            user.merging(["x-authenticated-user-oid": "\(Self.user),22222222-2222-4222-8222-222222222222"]) { $1 },
            ["x-authenticated-user-oid": Self.user, "x-authenticated-tenant-id": "\(Self.tenantA), \(Self.tenantA)"],
            user.merging(["x-authenticated-user-oid": Self.user, "x-authenticated-roles": "MCP.Admin, MCP.User"]) { $1 },
            user.merging(["x-authenticated-user-oid": Self.user, "x-authenticated-roles": "MCP.User MCP.Admin"]) { $1 },
            user.merging(["x-authenticated-user-oid": Self.user, "x-authenticated-roles": "MCP.User,,MCP.Admin"]) { $1 },
        ]
        for headers in cases {
            let r = whoami(router, path: "/a/mcp", token: nil, headers: headers, remote: "10.20.3.4")
            XCTAssertEqual(r.status, 403, "\(headers)")
            XCTAssertEqual(r.json?["error"], "invalid_identity", "\(headers)")
        }
        let merged = whoami(router, path: "/a/mcp", token: nil, headers: cases[3], remote: "10.20.3.4")
        XCTAssertTrue(String(decoding: merged.body, as: UTF8.self).contains("x-authenticated-roles was sent more than once"))
        let trail = try router.instances[0].stores.audit.audit(since: 0, tenant: nil, limit: 20)
        XCTAssertEqual(trail.map(\.reason), ["proxy_merged_header", "proxy_merged_header", "proxy_merged_header", "proxy_merged_header",
                                             "proxy_bad_roles", "proxy_bad_roles", "proxy_merged_header"])
        // One roles header the proxy set, roles separated by a comma alone, is believed.
        let one = whoami(router, path: "/a/mcp", token: nil,
                         headers: user.merging(["x-authenticated-user-oid": Self.user, "x-authenticated-roles": "MCP.Admin,MCP.User"]) { $1 },
                         remote: "10.20.3.4")
        XCTAssertEqual(one.json?["result"]?["structuredContent"]?["permissions"], ["admin", "user"])
    }

    func testTrustedProxyAssertionsAreExplicitInTheConfig() {
        func proxyErrors(_ proxy: [String: JSONValue]) -> [String] {
            var settings: [String: JSONValue] = ["enabled": true, "sources": ["10.20.0.0/16"]]
            for (k, v) in proxy { settings[k] = v }
            return errors(root(["a": instance("a", tenant: Self.tenantA, extra: ["trusted_proxy": .object(JSONObject(pairs: settings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))])]))
        }
        XCTAssertEqual(proxyErrors(["default_tenant": .string(Self.tenantA), "assert_tenant": true]),
                       ["instances.a.trusted_proxy.assert_tenant: cannot be combined with default_tenant: the tenant comes either from the proxy's header or from default_tenant"])
        XCTAssertEqual(proxyErrors([:]),
                       ["instances.a.trusted_proxy.default_tenant: name the tenant of the proxy's users, or set assert_tenant when the proxy sets x-authenticated-tenant-id itself"])
        XCTAssertEqual(proxyErrors(["assert_tenant": true, "roles_header": "x-authenticated-tenant-id"]),
                       ["instances.a.trusted_proxy.user_header: user_header, tenant_header, roles_header and name_header must be four different headers"])
        XCTAssertEqual(proxyErrors(["assert_tenant": true, "assert_roles": true, "assert_name": false]), [])
        XCTAssertEqual(proxyErrors(["default_tenant": .string(Self.tenantA), "assert_roles": "yes"]),
                       ["instances.a.trusted_proxy.assert_roles: must be true or false"])
    }

    func testNetworkRanges() {
        let v4 = NetworkRange("10.20.0.0/16")!
        XCTAssertTrue(v4.contains("10.20.255.1"))
        XCTAssertTrue(v4.contains("::ffff:10.20.1.1"))
        XCTAssertFalse(v4.contains("10.21.0.1"))
        XCTAssertTrue(NetworkRange("::1")!.contains("::1"))
        XCTAssertFalse(NetworkRange("::1")!.contains("127.0.0.1"))
        XCTAssertTrue(NetworkRange("2001:db8::/33")!.contains("2001:db8:7fff::1"))
        XCTAssertFalse(NetworkRange("2001:db8::/33")!.contains("2001:db8:8000::1"))
        for bad in ["10.0.0.0/33", "10.0.0", "fe80::/129", "x", "10.0.0.0/-1", ""] { XCTAssertNil(NetworkRange(bad), bad) }
    }
}
