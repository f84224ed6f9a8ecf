import GatewaySupport
import Foundation
import XCTest
@testable import MCPGateway

final class LogTimestampTests: XCTestCase {
    func testTimestampIsZeroPaddedUTCWithMilliseconds() throws {
        let t = Timestamp.nowWithMilliseconds()
        let pattern = try NSRegularExpression(pattern: "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")
        XCTAssertEqual(pattern.numberOfMatches(in: t, range: NSRange(t.startIndex..., in: t)), 1, t)
        let now = Date().timeIntervalSince1970
        let parsed = ISO8601DateFormatter()
        parsed.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let seconds = try XCTUnwrap(parsed.date(from: t)).timeIntervalSince1970
        XCTAssertLessThan(abs(seconds - now), 5)
    }
}

final class TimestampTests: XCTestCase {
    func testAuditTimesKeepTruncatedMilliseconds() {
        XCTAssertEqual(Timestamp.iso8601Milliseconds(1_796_083_200.0), "2026-12-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.iso8601Milliseconds(1_796_083_205.25), "2026-12-01T00:00:05.250Z")
    }

    func testWholeSecondsAndParsingAgreeWithFoundation() {
        XCTAssertEqual(Timestamp.iso8601(1_796_083_200), "2026-12-01T00:00:00Z")
        XCTAssertEqual(Timestamp.iso8601(1_796_083_200.4), ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: 1_796_083_200.4)))
        XCTAssertEqual(Timestamp.parse("2026-12-01T00:00:00Z"), 1_796_083_200)
        XCTAssertEqual(Timestamp.parse("2026-12-01T01:00:00+01:00"), 1_796_083_200)
        XCTAssertNil(Timestamp.parse("2026-12-01"))
        XCTAssertNil(Timestamp.parse("90m"))
    }
}
