@testable import EntraAuth
import Foundation
import MCPJSON
import XCTest
@testable import MCPGateway
import UpstreamHTTP

final class DoctorTests: XCTestCase {
    final class FakeEntra: HTTPFetching {
        let jwks: [UInt8]
        let keysDown: Bool
        var asked: [String] = []
        init(jwks: JSONValue, keysDown: Bool = false) {
            self.jwks = JSONWriter.serialize(jwks)
            self.keysDown = keysDown
        }
        func get(_ url: String) throws -> FetchedResponse {
            asked.append(url)
            if url.hasSuffix("/.well-known/openid-configuration") {
                return FetchedResponse(status: 200, body: Array(#"{"issuer":"https://login.example/t/v2.0","jwks_uri":"https://login.example/keys"}"#.utf8))
            }
            if keysDown { throw HTTPFetchError.transport("Couldn't connect to server") }
            return FetchedResponse(status: 200, body: jwks)
        }
    }

    func entraConfig(_ dir: String) throws -> GatewayConfig {
        try ProcessConfig.parse(JSONObject(pairs: [
            ("server", ["public_url": "https://h.example/mcp"]), ("state_dir", .string(dir)),
            ("auth", ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x", "authority": "https://login.example"]),
        ])).instances[0]
    }

    func testEveryCheckPassesWithReachableKeys() throws {
        let dir = NSTemporaryDirectory() + "doctor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fake = FakeEntra(jwks: try DevSigningKey.generate().jwks)
        let checks = Doctor(config: try entraConfig(dir), http: fake).run()
        XCTAssertEqual(checks.map(\.name), ["state directory", "shared store", "metrics file", "OpenID discovery", "JWKS", "token endpoint"])
        XCTAssertEqual(checks.filter { $0.outcome == .fail }.map(\.name), [])
        XCTAssertEqual(fake.asked, ["https://login.example/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/.well-known/openid-configuration",
                                    "https://login.example/keys"])
        XCTAssertTrue(checks[4].detail.contains("1 usable signing key"), checks[4].detail)
        XCTAssertTrue(Doctor.table(checks).hasSuffix("all checks passed\n"))
    }

    func testEachOIDCProvidersDiscoveryAndKeysAreChecked() throws {
        let dir = NSTemporaryDirectory() + "doctor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try ProcessConfig.parse(JSONObject(pairs: [
            ("server", ["public_url": "https://h.example/mcp"]), ("state_dir", .string(dir)),
            ("auth", ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x", "authority": "https://login.example",
                      "providers": [["type": "entra"],
                                    ["type": "oidc", "name": "same", "issuer": "https://login.example/t/v2.0", "audiences": ["a"]],
                                    ["type": "oidc", "name": "other", "issuer": "https://other.example", "audiences": ["a"]]]]),
        ])).instances[0]
        let checks = Doctor(config: config, http: FakeEntra(jwks: try DevSigningKey.generate().jwks)).run()
        let same = try XCTUnwrap(checks.first { $0.name == "provider oidc:same" })
        XCTAssertEqual(same.outcome, .pass, same.detail)
        XCTAssertTrue(same.detail.contains("1 usable signing key"), same.detail)
        // The fake's discovery document names another issuer: those keys must not be used.
        let other = try XCTUnwrap(checks.first { $0.name == "provider oidc:other" })
        XCTAssertEqual(other.outcome, .fail)
        XCTAssertTrue(other.detail.contains("discovery document names another issuer"), other.detail)
    }

    func testUnreachableKeysFailWithAFix() throws {
        let dir = NSTemporaryDirectory() + "doctor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checks = Doctor(config: try entraConfig(dir), http: FakeEntra(jwks: [:], keysDown: true)).run()
        let jwks = try XCTUnwrap(checks.first { $0.name == "JWKS" })
        XCTAssertEqual(jwks.outcome, .fail)
        XCTAssertTrue(jwks.detail.contains("Couldn't connect") && jwks.detail.contains("check outbound HTTPS"), jwks.detail)
        XCTAssertTrue(Doctor.table(checks).contains("1 check(s) failed"))
    }

    func testUnwritableStateDirectoryFails() throws {
        let file = NSTemporaryDirectory() + "doctor-file-" + UUID().uuidString
        FileManager.default.createFile(atPath: file, contents: Data())
        defer { unlink(file) }
        // A path under a regular file can never be created, whoever runs the test.
        let checks = Doctor(config: try entraConfig(file + "/state"), http: FakeEntra(jwks: try DevSigningKey.generate().jwks)).run()
        XCTAssertEqual(checks.first?.outcome, .fail)
        XCTAssertEqual(checks.first { $0.name == "shared store" }?.outcome, .skip)
        XCTAssertTrue(Doctor.table(checks).contains("1 check(s) failed"))
    }

    final class FakeUpstreams: HTTPClient, @unchecked Sendable {
        let powerBIStatus: Int
        let lock = NSLock()
        var asked: [(String, String?)] = []
        init(powerBIStatus: Int) { self.powerBIStatus = powerBIStatus }
        func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
            lock.withLock { asked.append((request.url, request.headers.first { $0.0.lowercased() == "authorization" }?.1)) }
            if request.url.contains("/oauth2/v2.0/token") {
                return UpstreamResponse(status: 200, body: Array(#"{"access_token":"app-token-123","expires_in":3599,"token_type":"Bearer"}"#.utf8))
            }
            if request.url.contains("/groups") { return UpstreamResponse(status: powerBIStatus, body: Array("{}".utf8)) }
            if request.url.hasPrefix("https://chat.example.test") { return UpstreamResponse(status: 401) }
            throw UpstreamError.connect(host: "down.example.test", detail: "refused")
        }
    }

    func upstreamConfig(_ dir: String, backends: JSONValue) throws -> GatewayConfig {
        try ProcessConfig.parse(JSONObject(pairs: [
            ("server", ["public_url": "https://h.example/mcp"]), ("state_dir", .string(dir)),
            ("auth", ["mode": "development", "tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x"]),
            ("credential", ["client_id": "9a9a9a9a-0000-4000-8000-0000000000a9", "client_secret_env": "DOCTOR_TEST_SECRET"]),
            ("powerbi", ["access_mode": "delegated"]),
            ("authorization", ["roles": ["MCP.User": ["user", "chat"]]]),
            ("backends", backends),
        ])).instances[0]
    }

    static let downTool: JSONValue = [
        "name": "down_status", "description": "Status.", "method": "GET", "path": "/api/status",
        "input_schema": ["type": "object", "properties": [:]],
    ]
    var downTool: JSONValue { Self.downTool }

    func testTokenEndpointPowerBIAndBackends() throws {
        let dir = NSTemporaryDirectory() + "doctor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fake = FakeUpstreams(powerBIStatus: 200)
        let config = try upstreamConfig(dir, backends: ["chat": BackendConfigTests.backend(),
                                                        "down": BackendConfigTests.backend(["base_url": "https://down.example.test"], tools: [downTool])])
        let checks = Doctor(config: config, upstream: fake, environment: ["DOCTOR_TEST_SECRET": "s3cret"]).run()
        let byName = Dictionary(uniqueKeysWithValues: checks.map { ($0.name, $0) })
        XCTAssertEqual(byName["token endpoint"]?.outcome, .pass, byName["token endpoint"]?.detail ?? "")
        XCTAssertEqual(byName["Power BI"]?.outcome, .pass, byName["Power BI"]?.detail ?? "")
        XCTAssertEqual(byName["backend chat"]?.outcome, .pass)
        XCTAssertTrue(byName["backend chat"]?.detail.contains("HTTP 401") == true)
        XCTAssertEqual(byName["backend down"]?.outcome, .fail)
        XCTAssertTrue(fake.asked.contains { $0.0.hasSuffix("/groups?$top=1") && $0.1 == "Bearer app-token-123" })
        XCTAssertTrue(fake.asked.contains { $0.0 == "https://chat.example.test/api/user_info" && $0.1 == nil })
        let table = Doctor.table(checks)
        XCTAssertFalse(table.contains("app-token-123") || table.contains("s3cret"), table)
    }

    func testPowerBIRefusingTheGatewayFailsWithAFix() throws {
        let dir = NSTemporaryDirectory() + "doctor-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checks = Doctor(config: try upstreamConfig(dir, backends: [:]), upstream: FakeUpstreams(powerBIStatus: 403),
                            environment: ["DOCTOR_TEST_SECRET": "s3cret"]).run()
        let pbi = try XCTUnwrap(checks.first { $0.name == "Power BI" })
        XCTAssertEqual(pbi.outcome, .fail)
        XCTAssertTrue(pbi.detail.contains("HTTP 403") && pbi.detail.contains("service principals"), pbi.detail)
        // Without the secret there is no token, and Power BI is skipped rather than failed twice.
        let noSecret = Doctor(config: try upstreamConfig(dir, backends: [:]), upstream: FakeUpstreams(powerBIStatus: 200), environment: [:]).run()
        XCTAssertEqual(noSecret.first { $0.name == "token endpoint" }?.outcome, .fail)
        XCTAssertEqual(noSecret.first { $0.name == "Power BI" }?.outcome, .skip)
    }
}
