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

final class JSONWriterTests: XCTestCase {
    /// The escaping every byte gets, one at a time: what the word-at-a-time writer must equal.
    private func reference(_ s: String) -> String {
        var out: [UInt8] = [0x22]
        for b in s.utf8 {
            switch b {
            case 0x22: out += Array("\\\"".utf8)
            case 0x5C: out += Array("\\\\".utf8)
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20, 0x7F: out += Array(String(format: "\\u%04x", Int(b)).utf8)
            default: out.append(b)
            }
        }
        return String(decoding: out + [0x22], as: UTF8.self)
    }

    func testEveryByteThatNeedsEscapingIsEscapedAtEveryOffsetOfAWord() throws {
        let specials: [Character] = ["\"", "\\", "\n", "\r", "\t", "\u{00}", "\u{01}", "\u{1F}", "\u{7F}"]
        let plain: [Character] = [" ", "a", "~", "!", "#", "[", "]", "\u{20}", "\u{7E}", "é", "😀"]
        for special in specials {
            for length in 0...19 {
                for position in 0..<max(length, 1) {
                    var chars = (0..<length).map { plain[$0 % plain.count] }
                    if length > 0 { chars[position] = special }
                    let s = String(chars)
                    XCTAssertEqual(JSONWriter.string(.string(s)), reference(s), "\(Array(s.utf8))")
                    XCTAssertEqual(try JSONParser.parse(JSONWriter.string(.string(s))), .string(s))
                }
            }
        }
    }

    /// A long string is escaped a chunk (4,096 input bytes) at a time: escapes on both sides of
    /// every chunk boundary, and a string of nothing but escapes (the worst case's room), come out whole.
    func testLongStringsAreEscapedAcrossChunkBoundaries() throws {
        let pattern: [Character] = ["{", "\"", "k", "\"", ":", "\n", "\u{01}", "é", "\\", "a"]
        for length in [4095, 4096, 4097, 8191, 8200, 12_345] {
            let s = String((0..<length).map { pattern[$0 % pattern.count] })
            XCTAssertEqual(JSONWriter.string(.string(s)), reference(s), "length \(length)")
            XCTAssertEqual(try JSONParser.parse(JSONWriter.string(.string(s))), .string(s))
        }
        let controls = String(repeating: "\u{01}", count: 5000)
        XCTAssertEqual(JSONWriter.string(.string(controls)), "\"" + String(repeating: "\\u0001", count: 5000) + "\"")
    }

    func testBytesNextToTheSpecialOnesAreNotEscaped() {
        // 0x21, 0x23, 0x5B, 0x5D, 0x7E and 0x80+ sit beside the escaped values in the word test.
        let s = "!#[]~\u{20}\u{80}\u{FF}ÿ\u{100}" + String(repeating: "\u{21}\u{23}\u{5B}\u{5D}", count: 5)
        XCTAssertEqual(JSONWriter.string(.string(s)), "\"" + s + "\"")
    }

    func testIntegersAtTheirLimits() {
        for i in [0, 1, -1, 9, 10, -10, 1234567890, Int.max, Int.min, Int.max - 1, Int.min + 1] {
            XCTAssertEqual(JSONWriter.string(.integer(i)), String(i))
        }
        XCTAssertEqual(JSONWriter.string(.double(-3)), "-3")
        XCTAssertEqual(JSONWriter.string(.double(2.5)), "2.5")
    }

    func testLargeDocumentsGrowTheBuffer() throws {
        let items = (0..<5000).map { JSONValue.string("item \($0) \"quoted\"\n") }
        let text = JSONWriter.string(.array(items))
        XCTAssertGreaterThan(text.utf8.count, 100_000)
        XCTAssertEqual(try JSONParser.parse(text), .array(items))
        XCTAssertEqual(JSONWriter.serialize(.array(items)), Array(text.utf8))
    }
}
