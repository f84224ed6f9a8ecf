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
