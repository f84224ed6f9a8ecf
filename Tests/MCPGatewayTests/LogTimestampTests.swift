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

    /// Rounded to the millisecond (half up), then down to the second: ISO8601DateFormatter's
    /// answers for these times, taken from a Foundation build.
    func testWholeSecondsRoundAsTheFormatterDid() {
        let cases: [(Double, String)] = [
            (1_796_083_200.6, "2026-12-01T00:00:00Z"), (1_796_083_200.9994, "2026-12-01T00:00:00Z"),
            (1_796_083_200.9995, "2026-12-01T00:00:01Z"), (-0.0005, "1970-01-01T00:00:00Z"),
            (-0.0006, "1969-12-31T23:59:59Z"), (-1.5, "1969-12-31T23:59:58Z"),
            (253_402_300_800, "10000-01-01T00:00:00Z"),
            // Proleptic Gregorian, as ISO 8601 has it (the formatter switched to the Julian calendar before 1582).
            (-62_135_596_800, "0001-01-01T00:00:00Z"),
        ]
        for (seconds, text) in cases { XCTAssertEqual(Timestamp.iso8601(seconds), text, "\(seconds)") }
    }

    func testParseTakesTheInternetDateTimeForms() {
        XCTAssertEqual(Timestamp.parse("2026-12-01T01:00:00+0100"), 1_796_083_200)
        XCTAssertEqual(Timestamp.parse("2026-12-01T01:00:00+01"), 1_796_083_200)
        XCTAssertEqual(Timestamp.parse("2026-12-01T00:00:00z"), 1_796_083_200)
        XCTAssertEqual(Timestamp.parse("2026-12-01T00:00:00-05:30"), 1_796_103_000)
        XCTAssertEqual(Timestamp.parse("2026-12-01T00:00:00-00:00"), 1_796_083_200)
        XCTAssertEqual(Timestamp.parse("1969-12-31T23:59:59Z"), -1)
        XCTAssertEqual(Timestamp.parse("2028-02-29T00:00:00Z"), 1_835_395_200)
        XCTAssertEqual(Timestamp.parse("0000-01-01T00:00:00Z"), -62_167_219_200)
        XCTAssertEqual(Timestamp.parse("9999-12-31T23:59:59Z"), 253_402_300_799)
        for (seconds, _) in [(0.0, ""), (1_796_083_200, ""), (-86_401, "")] {
            XCTAssertEqual(Timestamp.parse(Timestamp.iso8601(seconds)), seconds)
        }
    }

    func testParseRefusesWhatIsNotOneInstant() {
        for text in ["", "2026-12-01T00:00:00", "2026-12-01T00:00:00.123Z", "2026-12-01t00:00:00Z", "2026-12-01 00:00:00Z",
                     "2026-12-01T00:00Z", "20261201T000000Z", "2026-1-1T0:0:0Z", "+2026-12-01T00:00:00Z",
                     "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-12-00T00:00:00Z", "2026-12-32T00:00:00Z",
                     "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T00:60:00Z",
                     "2026-12-01T23:59:60Z", "2026-12-01T00:00:00+24:00", "2026-12-01T00:00:00+01:60", "2026-12-01T00:00:00+1:00",
                     "2026-12-01T00:00:00+01:00:00", "2026-12-01T00:00:00Zjunk", " 2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z ",
                     "2026-12-01T00:00:00GMT", "\u{FF12}026-12-01T00:00:00Z", "2026-12-01T00:00:00+01;00"] {
            XCTAssertNil(Timestamp.parse(text), text)
        }
    }
}
