import GatewaySupport
import Foundation
import XCTest
@testable import MCPGateway

final class LogTimestampTests: XCTestCase {
    func testTimestampIsZeroPaddedUTCWithMilliseconds() throws {
        let t = Log.timestamp()
        let pattern = try NSRegularExpression(pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")
        XCTAssertEqual(pattern.numberOfMatches(in: t, range: NSRange(t.startIndex..., in: t)), 1, t)
        let now = Date().timeIntervalSince1970
        let parsed = ISO8601DateFormatter()
        parsed.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let seconds = try XCTUnwrap(parsed.date(from: t)).timeIntervalSince1970
        XCTAssertLessThan(abs(seconds - now), 5)
    }
}
