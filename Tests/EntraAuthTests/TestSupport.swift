import XCTest
import EntraAuth

func XCTAssertRefused(_ verifier: TokenVerifier, _ token: String, _ expected: TokenVerificationError,
                      file: StaticString = #filePath, line: UInt = #line) {
    switch verifier.check(token) {
    case .success: XCTFail("token accepted; expected \(expected)", file: file, line: line)
    case .failure(let e): XCTAssertEqual(e, expected, file: file, line: line)
    }
}
