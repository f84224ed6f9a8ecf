import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// Every status-code rule of the MCP endpoint, through the whole in-process path.
final class TransportRulesTests: XCTestCase {
    var f: GatewayFixture!
    var token: String!

    override func setUpWithError() throws {
        f = try GatewayFixture()
        token = try f.token()
    }

    func testGetAndDeleteAre405WithAllow() {
        for method in ["GET", "DELETE", "PUT"] {
            let r = f.gateway.respond(to: HTTPRequest(method: method, path: "/mcp"))
            XCTAssertEqual(r.status, 405, method)
            XCTAssertEqual(r.header("Allow"), "POST")
        }
    }

    func testForeignOriginIs403AndAllowedOriginPasses() {
        let body = GatewayFixture.legacyBody("ping")
        XCTAssertEqual(f.post(body, headers: ["origin": "https://evil.example"], token: token).status, 403)
        XCTAssertEqual(f.post(body, headers: ["origin": "https://app.example.test"], token: token).status, 200)
    }

    func testAcceptAndContentType() {
        let body = GatewayFixture.legacyBody("ping")
        XCTAssertEqual(f.post(body, headers: ["accept": "text/html"], token: token).status, 406)
        XCTAssertEqual(f.post(body, headers: ["accept": "application/json;q=0, text/event-stream"], token: token).status, 406)
        XCTAssertEqual(f.post(body, headers: ["accept": "*/*"], token: token).status, 200)
        XCTAssertEqual(f.post(body, headers: ["content-type": "text/plain"], token: token).status, 415)
        XCTAssertEqual(f.post(body, headers: ["content-type": "application/json; charset=utf-8"], token: token).status, 200)
    }

    func testParseErrorsBatchesAndInvalidRequests() {
        var r = f.post(raw: Array("{\"jsonrpc\":".utf8), token: token)
        XCTAssertEqual(r.status, 400); XCTAssertEqual(r.errorCode, -32700)
        r = f.post(raw: Array(#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.utf8), token: token)
        XCTAssertEqual(r.status, 400); XCTAssertEqual(r.errorCode, -32600)
        r = f.post(raw: Array(#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#.utf8), token: token)
        XCTAssertEqual(r.status, 400); XCTAssertEqual(r.errorCode, -32600)
        r = f.post(raw: Array(#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#.utf8), token: token)
        XCTAssertEqual(r.status, 400); XCTAssertEqual(r.errorCode, -32600)
        r = f.post(raw: Array(String(repeating: "[", count: 20).utf8) + Array(String(repeating: "]", count: 20).utf8), token: token)
        XCTAssertEqual(r.status, 400); XCTAssertEqual(r.errorCode, -32700)
        XCTAssertTrue(r.json?["error"]?["message"]?.stringValue?.contains("too deeply") ?? false)
    }

    /// JSON-RPC 2.0 §5: an error answered before the request's id could be read still has an
    /// "id" member, and it is null (clients that match answers by id look for it).
    func testErrorsBeforeTheIdIsKnownCarryANullId() {
        let bodies = ["{\"jsonrpc\":", #"{"jsonrpc":"2.0","id":7,"method":"ping","method":"x"}"#, "[]", #""ping""#]
        for body in bodies {
            let r = f.post(raw: Array(body.utf8), token: token)
            XCTAssertEqual(r.status, 400, body)
            XCTAssertTrue(String(decoding: r.body, as: UTF8.self).hasPrefix(#"{"jsonrpc":"2.0","id":null,"error":"#),
                          String(decoding: r.body, as: UTF8.self))
        }
        let r = f.post(GatewayFixture.legacyBody("ping"), headers: ["content-type": "text/plain"], token: token)
        XCTAssertEqual(r.status, 415)
        XCTAssertEqual(r.json?["id"], .null)
    }

    /// Ids come back byte for byte or not at all: a string or an integer that fits 64 bits is
    /// echoed as sent; a fraction, an exponent or a longer integer (which would come back
    /// rounded, e.g. 1.2345678901234568e+29) is -32600 with no id.
    func testIdsRoundTripExactlyOrAreRefused() {
        for id in ["123456789012345678901234567890", "1.5", "1.0", "1e3", "-9223372036854775809"] {
            let r = f.post(raw: Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"ping"}"#.utf8), token: token)
            XCTAssertEqual(r.status, 400, id); XCTAssertEqual(r.errorCode, -32600, id)
            XCTAssertEqual(r.json?["id"], .null, id)
            XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains("e+"), id)
        }
        for id in ["9223372036854775807", "-9223372036854775808", "0", #""123456789012345678901234567890""#, #""1.5""#] {
            let r = f.post(raw: Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"ping"}"#.utf8), token: token)
            XCTAssertEqual(r.status, 200, id)
            XCTAssertTrue(String(decoding: r.body, as: UTF8.self).contains(#""id":\#(id),"#), String(decoding: r.body, as: UTF8.self))
        }
    }

    /// The front end hands an oversized body's 413 to the gateway: MCP clients get a JSON-RPC error.
    func testOversizedBodyOnTheMCPPathIsAJSONRPCError() {
        let r = f.gateway.bodyTooLarge(path: "/mcp", detail: "request body of 9 bytes exceeds the limit of 8 bytes")
        XCTAssertEqual(r.status, 413)
        XCTAssertEqual(r.header("Content-Type"), "application/json")
        XCTAssertEqual(r.json?["jsonrpc"], "2.0")
        XCTAssertEqual(r.json?["id"], .null)
        XCTAssertEqual(r.errorCode, -32600)
        XCTAssertTrue(r.json?["error"]?["message"]?.stringValue?.contains("exceeds the limit of 8 bytes") ?? false)
        let other = f.gateway.bodyTooLarge(path: "/me", detail: "too large")
        XCTAssertEqual(other.status, 413)
        XCTAssertEqual(other.json?["error"], "request_too_large")
    }

    /// A body that did not arrive before the front end's deadline: likewise a JSON-RPC error on the MCP path.
    func testStalledBodyOnTheMCPPathIsAJSONRPCError() {
        let r = f.gateway.bodyTimedOut(path: "/mcp", detail: "only 20 bytes of it arrived before the deadline")
        XCTAssertEqual(r.status, 408)
        XCTAssertEqual(r.header("Content-Type"), "application/json")
        XCTAssertEqual(r.json?["id"], .null)
        XCTAssertEqual(r.errorCode, -32600)
        XCTAssertTrue(r.json?["error"]?["message"]?.stringValue?.contains("only 20 bytes of it arrived") ?? false)
        let other = f.gateway.bodyTimedOut(path: "/me", detail: "late")
        XCTAssertEqual(other.status, 408)
        XCTAssertEqual(other.json?["error"], "request_timeout")
    }

    func testModernDiscoverAndCacheHints() throws {
        let r = f.post(GatewayFixture.modernBody("server/discover"), headers: GatewayFixture.modernHeaders("server/discover"), token: token)
        XCTAssertEqual(r.status, 200)
        let result = try XCTUnwrap(r.json?["result"])
        XCTAssertEqual(result["resultType"], "complete")
        XCTAssertEqual(result["supportedVersions"], ["2026-07-28"])
        XCTAssertNotNil(result["ttlMs"]?.intValue)
        XCTAssertEqual(result["cacheScope"], "public")
        XCTAssertEqual(result["_meta"]?["io.modelcontextprotocol/serverInfo"]?["name"], "mcp-fcgi")
    }

    func testModernToolsListIsPrivateAndComplete() throws {
        let r = f.post(GatewayFixture.modernBody("tools/list"), headers: GatewayFixture.modernHeaders("tools/list"), token: token)
        let result = try XCTUnwrap(r.json?["result"])
        XCTAssertEqual(result["cacheScope"], "private")
        XCTAssertEqual(result["tools"]?.arrayValue?.compactMap { $0["name"]?.stringValue }, ["whoami", "server_info"])
        XCTAssertNil(result["nextCursor"])
    }

    func testModernHeaderMismatches() {
        let call = GatewayFixture.modernBody("tools/call", params: ["name": "whoami", "arguments": [:]])
        var h = GatewayFixture.modernHeaders("tools/call", name: "whoami")
        XCTAssertEqual(f.post(call, headers: h, token: token).status, 200)

        for (key, value) in [("mcp-protocol-version", ""), ("mcp-protocol-version", "2025-11-25"), ("mcp-method", ""),
                             ("mcp-method", "tools/list"), ("mcp-name", ""), ("mcp-name", "server_info"),
                             ("mcp-name", "=?base64?c2VydmVyX2luZm8=?="), ("mcp-name", "=?base64?not base64?=")] {
            var bad = h
            bad[key] = value
            let r = f.post(call, headers: bad, token: token)
            XCTAssertEqual(r.status, 400, "\(key)=\(value)")
            XCTAssertEqual(r.errorCode, -32020, "\(key)=\(value)")
        }
        h["mcp-name"] = "=?base64?d2hvYW1p?="  // "whoami"
        XCTAssertEqual(f.post(call, headers: h, token: token).status, 200)
    }

    func testModernUnsupportedVersionListsSupported() {
        let body = GatewayFixture.modernBody("tools/list", version: "2099-01-01")
        let r = f.post(body, headers: ["mcp-protocol-version": "2099-01-01", "mcp-method": "tools/list"], token: token)
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(r.errorCode, -32022)
        XCTAssertEqual(r.json?["error"]?["data"]?["supported"], ["2026-07-28"])
        XCTAssertEqual(r.json?["error"]?["data"]?["requested"], "2099-01-01")
    }

    func testModernMissingCapabilitiesIs32602() {
        let r = f.post(GatewayFixture.modernBody("tools/list", capabilities: nil), headers: GatewayFixture.modernHeaders("tools/list"), token: token)
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(r.errorCode, -32602)
    }

    func testModernUnknownAndLegacyOnlyMethodsAre404() {
        for method in ["resources/list", "initialize", "ping", "logging/setLevel"] {
            let r = f.post(GatewayFixture.modernBody(method), headers: GatewayFixture.modernHeaders(method), token: token)
            XCTAssertEqual(r.status, 404, method)
            XCTAssertEqual(r.errorCode, -32601, method)
        }
    }

    func testLegacyHandshakeAndPagination() throws {
        var r = f.post(GatewayFixture.legacyBody("initialize", params: ["protocolVersion": "2025-06-18", "capabilities": [:],
                                                                        "clientInfo": ["name": "t", "version": "1"]]), token: token)
        XCTAssertEqual(r.json?["result"]?["protocolVersion"], "2025-06-18")
        XCTAssertEqual(r.json?["result"]?["serverInfo"]?["name"], "mcp-fcgi")
        XCTAssertNotNil(r.json?["result"]?["capabilities"]?["tools"])
        XCTAssertNil(r.header("Mcp-Session-Id"))
        r = f.post(GatewayFixture.legacyBody("initialize", params: ["protocolVersion": "1999-01-01"]), token: token)
        XCTAssertEqual(r.json?["result"]?["protocolVersion"], "2025-11-25")

        r = f.post(GatewayFixture.legacyBody("notifications/initialized", id: nil), headers: ["mcp-protocol-version": "2025-11-25"], token: token)
        XCTAssertEqual(r.status, 202)
        XCTAssertTrue(r.body.isEmpty)

        // Page size 1: two pages, then the end.
        r = f.post(GatewayFixture.legacyBody("tools/list"), headers: ["mcp-protocol-version": "2025-11-25"], token: token)
        XCTAssertEqual(r.json?["result"]?["tools"]?.arrayValue?.count, 1)
        let cursor = try XCTUnwrap(r.json?["result"]?["nextCursor"]?.stringValue)
        r = f.post(GatewayFixture.legacyBody("tools/list", params: ["cursor": .string(cursor)]), headers: ["mcp-protocol-version": "2025-11-25"], token: token)
        XCTAssertEqual(r.json?["result"]?["tools"]?.arrayValue?.first?["name"], "server_info")
        XCTAssertNil(r.json?["result"]?["nextCursor"])
        r = f.post(GatewayFixture.legacyBody("tools/list", params: ["cursor": "bogus!"]), token: token)
        XCTAssertEqual(r.errorCode, -32602)
    }

    func testLegacyVersionHeaderAndUnknownMethod() {
        var r = f.post(GatewayFixture.legacyBody("ping"), headers: ["mcp-protocol-version": "2024-01-01"], token: token)
        XCTAssertEqual(r.status, 400)
        r = f.post(GatewayFixture.legacyBody("ping"), token: token)  // no header: 2025-03-26 assumed
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.json?["result"], .object(JSONObject()))
        r = f.post(GatewayFixture.legacyBody("resources/list"), token: token)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.errorCode, -32601)
    }

    func testToolCallsStructuredUnknownAndBadArguments() throws {
        var r = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "server_info"]), token: token)
        let result = try XCTUnwrap(r.json?["result"])
        XCTAssertEqual(result["isError"], false)
        let text = try XCTUnwrap(result["content"]?.arrayValue?.first?["text"]?.stringValue)
        XCTAssertEqual(try JSONParser.parse(text), result["structuredContent"])
        XCTAssertEqual(result["structuredContent"]?["era"], "legacy")

        r = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "nope"]), token: token)
        XCTAssertEqual(r.errorCode, -32602)
        r = f.post(GatewayFixture.legacyBody("tools/call", params: ["name": "whoami", "arguments": ["x": 1]]), token: token)
        XCTAssertEqual(r.errorCode, -32602)
        XCTAssertTrue(r.json?["error"]?["message"]?.stringValue?.contains("arguments.x") ?? false)
        let modern = GatewayFixture.modernBody("tools/call", params: ["name": "nope"])
        r = f.post(modern, headers: GatewayFixture.modernHeaders("tools/call", name: "nope"), token: token)
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(r.errorCode, -32602)
    }

    func testHealthAndUnknownPaths() {
        let h = f.gateway.respond(to: HTTPRequest(method: "GET", path: "/health"))
        XCTAssertEqual(h.status, 200)
        XCTAssertEqual(h.json?["status"], "ok")
        XCTAssertEqual(h.json?["development_mode"], true)
        XCTAssertEqual(f.gateway.respond(to: HTTPRequest(method: "GET", path: "/nope")).status, 404)
    }
}
