@testable import EntraAuth
import Foundation
import MCPJSON
import XCTest
@testable import MCPGateway

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
        try GatewayConfig.parse(JSONObject(pairs: [
            ("server", ["public_url": "https://h.example/mcp"]), ("state_dir", .string(dir)),
            ("auth", ["tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "api://x", "authority": "https://login.example"]),
        ]))
    }

    func testEveryCheckPassesWithReachableKeys() throws {
        let dir = NSTemporaryDirectory() + "doctor-" + UUID().uuidString
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

    func testUnreachableKeysFailWithAFix() throws {
        let dir = NSTemporaryDirectory() + "doctor-" + UUID().uuidString
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
        let checks = Doctor(config: try entraConfig(file + "/state"), http: FakeEntra(jwks: [:])).run()
        XCTAssertEqual(checks.first?.outcome, .fail)
        XCTAssertEqual(checks.first { $0.name == "shared store" }?.outcome, .fail)
    }
}
