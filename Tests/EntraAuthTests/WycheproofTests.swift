import Foundation
import MCPJSON
import MCPGatewayTesting
import XCTest
@testable import EntraAuth

/// Runs the Wycheproof signature vectors through the same key loading and
/// signature code the verifier uses.
final class WycheproofTests: XCTestCase {
    struct Tally: CustomStringConvertible {
        var valid = 0, invalid = 0, acceptableAccepted = 0, acceptableRejected = 0
        var description: String {
            "valid=\(valid) invalid=\(invalid) acceptable(accepted)=\(acceptableAccepted) acceptable(rejected)=\(acceptableRejected)"
        }
    }

    /// `../../../shared/vectors/wycheproof` from this file (the shared folder sits
    /// beside the package root), else `$MCP_FCGI_VECTORS`. Missing vectors fail loudly.
    static func vectorsDirectory(file: StaticString = #filePath) -> URL? {
        let here = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        var candidates = [here.appendingPathComponent("../../../shared/vectors/wycheproof").standardizedFileURL]
        if let env = ProcessInfo.processInfo.environment["MCP_FCGI_VECTORS"], !env.isEmpty {
            candidates.append(URL(fileURLWithPath: env))
            candidates.append(URL(fileURLWithPath: env).appendingPathComponent("wycheproof"))
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("README.md").path) }
    }

    func loadVectors(_ name: String) throws -> JSONValue {
        guard let dir = Self.vectorsDirectory() else {
            // A failure, never a skip: a missing vector set must not look like a pass.
            XCTFail("Wycheproof vectors not found: expected ../../../shared/vectors/wycheproof beside the package or MCP_FCGI_VECTORS")
            throw POSIXError(.ENOENT)
        }
        let data = try Data(contentsOf: dir.appendingPathComponent(name))
        return try JSONParser.parse([UInt8](data), limits: JSONLimits(maxDepth: 16, maxBytes: 16 << 20))
    }

    func run(file: String, algorithm: JWSAlgorithm, jwkKey: String?, expectedGroups: Int? = nil) throws -> Tally {
        let doc = try loadVectors(file)
        var tally = Tally()
        var groupCount = 0
        for group in doc["testGroups"]?.arrayValue ?? [] {
            groupCount += 1
            var jwkObject: JSONObject
            if let jwkKey, let o = group[jwkKey]?.objectValue {
                jwkObject = o
            } else {
                // ECDSA groups without a JWK: build one from the affine coordinates.
                let pk = group["publicKey"]!
                func coord(_ k: String) -> String {
                    var b = hexBytes(pk[k]!.stringValue!)
                    while b.count > 32, b.first == 0 { b.removeFirst() }
                    while b.count < 32 { b.insert(0, at: 0) }
                    return Base64.encodeURL(b)
                }
                jwkObject = JSONObject(["kty": "EC", "crv": "P-256", "x": .string(coord("wx")), "y": .string(coord("wy"))])
            }
            jwkObject["kid"] = "wycheproof"
            jwkObject["alg"] = .string(algorithm.rawValue)
            let key = try VerificationKey(jwk: JWK(jwkObject)!)
            for test in group["tests"]?.arrayValue ?? [] {
                let id = test["tcId"]!.intValue!
                let ok = SignatureVerifier.verify(signature: hexBytes(test["sig"]!.stringValue!),
                                                  message: hexBytes(test["msg"]!.stringValue!), key: key)
                switch test["result"]!.stringValue! {
                case "valid":
                    XCTAssertTrue(ok, "\(file) tcId \(id) is valid but was rejected")
                    tally.valid += 1
                case "invalid":
                    XCTAssertFalse(ok, "\(file) tcId \(id) is invalid but was accepted")
                    tally.invalid += 1
                default:
                    if ok { tally.acceptableAccepted += 1 } else { tally.acceptableRejected += 1 }
                }
            }
        }
        XCTAssertGreaterThan(groupCount, 0, "\(file) has no test groups")
        print("Wycheproof \(file): \(tally)")
        return tally
    }

    func testRS256_2048() throws {
        let t = try run(file: "rsa_signature_2048_sha256_test.json", algorithm: .rs256, jwkKey: "keyJwk")
        XCTAssertEqual(t.valid + t.invalid + t.acceptableAccepted + t.acceptableRejected, 259)
    }

    func testRS256_3072() throws {
        let t = try run(file: "rsa_signature_3072_sha256_test.json", algorithm: .rs256, jwkKey: "keyJwk")
        XCTAssertEqual(t.valid + t.invalid + t.acceptableAccepted + t.acceptableRejected, 259)
    }

    func testRS256_4096() throws {
        let t = try run(file: "rsa_signature_4096_sha256_test.json", algorithm: .rs256, jwkKey: "keyJwk")
        XCTAssertEqual(t.valid + t.invalid + t.acceptableAccepted + t.acceptableRejected, 258)
    }

    func testPS256() throws {
        let t = try run(file: "rsa_pss_2048_sha256_mgf1_32_test.json", algorithm: .ps256, jwkKey: "publicKeyJwk")
        XCTAssertEqual(t.valid + t.invalid, 108)
    }

    func testES256() throws {
        let t = try run(file: "ecdsa_secp256r1_sha256_p1363_test.json", algorithm: .es256, jwkKey: "publicKeyJwk")
        XCTAssertEqual(t.valid + t.invalid, 262)
    }

    func testVectorsLocatedRelativeToThisFile() {
        XCTAssertNotNil(Self.vectorsDirectory(), "vectors directory must be found; tests must not skip silently")
    }
}
