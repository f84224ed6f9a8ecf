import XCTest
@testable import MCPJSON

final class JSONTests: XCTestCase {
    func testRoundTrip() throws {
        let text = #"{"a":1,"b":[true,false,null],"c":"x\"y\u00e9","d":-2.5}"#
        let v = try JSONParser.parse(text)
        XCTAssertEqual(v["a"], .integer(1))
        XCTAssertEqual(v["c"]?.stringValue, "x\"yé")
        XCTAssertEqual(JSONWriter.string(v), #"{"a":1,"b":[true,false,null],"c":"x\"yé","d":-2.5}"#)
    }
}

final class JSONStrictnessTests: XCTestCase {
    func testRejectsWhatRFC8259Rejects() {
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "01", "1.", ".5", "+1", "'x'", "\"\u{01}\"", "{\"a\" 1}", "tru", "nul",
                    "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "[1] x", "{\"a\":1,\"a\":2}", "NaN", "1e999"] {
            XCTAssertThrowsError(try JSONParser.parse(bad), bad)
        }
    }

    func testLimits() {
        let deep = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        XCTAssertNoThrow(try JSONParser.parse(deep, limits: JSONLimits(maxDepth: 10)))
        XCTAssertThrowsError(try JSONParser.parse(deep, limits: JSONLimits(maxDepth: 9))) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .tooDeep)
        }
        XCTAssertThrowsError(try JSONParser.parse("[1,2,3]", limits: JSONLimits(maxBytes: 4))) {
            XCTAssertEqual(($0 as? JSONParseError)?.kind, .tooLarge)
        }
    }

    func testEscapesAndNumbers() throws {
        XCTAssertEqual(try JSONParser.parse(#""\ud83d\ude00 \n\/""#), .string("😀 \n/"))
        XCTAssertEqual(try JSONParser.parse("-0"), .integer(0))
        XCTAssertEqual(try JSONParser.parse("12345678901234567890"), .double(12345678901234567890))
        XCTAssertEqual(try JSONParser.parse("1e2").intValue, 100)
        XCTAssertEqual(JSONWriter.string(.string("\u{01}\u{7F}\"\\")), #""\u0001\u007f\"\\""#)
        XCTAssertEqual(JSONWriter.string(.double(.nan)), "null")
    }

    func testErrorsCarryLineAndColumn() {
        XCTAssertThrowsError(try JSONParser.parse("{\n  \"a\": x\n}")) {
            let e = $0 as! JSONParseError
            XCTAssertEqual(e.line, 2)
            XCTAssertEqual(e.column, 8)
        }
    }

    func testBase64Strictness() {
        XCTAssertEqual(Base64.decodeURL(Array("aGk".utf8)), Array("hi".utf8))
        XCTAssertNil(Base64.decodeURL(Array("aGk=".utf8)))
        XCTAssertNil(Base64.decodeURL(Array("aG+k".utf8)))
        XCTAssertNil(Base64.decodeURL(Array("aGl".utf8)))  // non-zero trailing bits
        XCTAssertEqual(Base64.decodeStandard(Array("d2hvYW1p".utf8)), Array("whoami".utf8))
        XCTAssertNil(Base64.decodeStandard(Array("aGk".utf8)))
        XCTAssertEqual(Base64.encode(Array("hi".utf8)), "aGk=")
    }
}

final class JSONObjectTests: XCTestCase {
    func testLargeObjectsKeepOrderLookupAndRemoval() throws {
        let text = "{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"
        var o = try XCTUnwrap(JSONParser.parse(text).objectValue)
        XCTAssertEqual(o["k37"], .integer(37))
        o["k5"] = nil
        XCTAssertNil(o["k5"])
        XCTAssertEqual(o["k39"], .integer(39))
        XCTAssertEqual(o.count, 39)
        XCTAssertEqual(o.keys.prefix(6), ["k0", "k1", "k2", "k3", "k4", "k6"])
        XCTAssertThrowsError(try JSONParser.parse("{" + (0..<20).map { "\"k\($0)\":1" }.joined(separator: ",") + ",\"k3\":2}"))
        XCTAssertEqual(try JSONParser.parse(#"{"a":1,"b":2}"#), try JSONParser.parse(#"{"b":2,"a":1}"#))
    }
}
