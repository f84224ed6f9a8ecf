import GatewaySupport
import MCPJSON
import XCTest
@testable import MCPGateway

/// A structured tool result is written from its JSON serialised once; the answer must be the
/// bytes the general path (`result.json` through the envelope) writes, in every era.
final class ToolResultReplyTests: XCTestCase {
    let reply = MCPReply(server: ServerIdentity(name: "srv \"q\"", version: "1.2\\3", instructions: nil, startedAt: 0),
                         listTTLMilliseconds: 0)

    private func accepted(id: JSONValue, era: ProtocolEra) throws -> AcceptedMessage {
        let message = try JSONRPCMessage.parse(["jsonrpc": "2.0", "id": id, "method": "tools/call", "params": [:]]).get()
        return AcceptedMessage(message: message, era: era, protocolVersion: era == .modern ? "2026-07-28" : "2025-06-18")
    }

    private let values: [JSONValue] = [
        [:],
        ["a": "plain", "n": 12, "neg": -7, "d": 1.5, "t": true, "f": false, "z": .null],
        ["quote\"key": "say \"hi\" \\ back\\slash", "ctl": "tab\there\nnew\r\u{1}\u{1f}\u{7f}", "uni": "caf\u{e9} \u{1F600} \u{2028}"],
        ["nested": ["list": [1, "two", ["three": [.null, []]]], "empty": [:]], "long": .string(String(repeating: "x\"y", count: 3000))],
        ["result": [1, 2, 3]],
    ]

    func testAStructuredResultIsWrittenAsTheGeneralPathWritesIt() throws {
        for era in [ProtocolEra.legacy, .modern] {
            for id: JSONValue in [1, "req-\"7\"", .integer(-9_007_199_254_740_991)] {
                let a = try accepted(id: id, era: era)
                for value in values {
                    let result = ToolResult.structured(value)
                    XCTAssertNotNil(result.structuredText)
                    let fast = reply.result(result, to: a), general = reply.result(result.json, to: a)
                    XCTAssertEqual(String(decoding: fast.body, as: UTF8.self), String(decoding: general.body, as: UTF8.self))
                    XCTAssertEqual(fast.status, general.status)
                    XCTAssertEqual(fast.headers.map { "\($0.0): \($0.1)" }, general.headers.map { "\($0.0): \($0.1)" })
                    // The answer's text is the structured content's JSON.
                    let parsed = try JSONParser.parse(fast.body)
                    let text = try XCTUnwrap(parsed["result"]?["content"]?.arrayValue?.first?["text"]?.stringValue)
                    XCTAssertEqual(try JSONParser.parse(Array(text.utf8)), value)
                    XCTAssertEqual(parsed["result"]?["structuredContent"], value)
                }
            }
        }
    }

    func testAResultChangedAfterItWasMadeIsWrittenAsItNowIs() throws {
        let a = try accepted(id: 3, era: .legacy)
        var failed = ToolResult.structured(["ok": true])
        failed.isError = true
        XCTAssertEqual(reply.result(failed, to: a).body, reply.result(failed.json, to: a).body)
        XCTAssertEqual(try JSONParser.parse(reply.result(failed, to: a).body)["result"]?["isError"], true)

        // Replacing the structured content keeps the text it was made with, as before.
        var replaced = ToolResult.structured(["v": 1])
        replaced.structuredContent = ["v": 2]
        XCTAssertNil(replaced.structuredText)
        XCTAssertEqual(replaced.content, [["type": "text", "text": #"{"v":1}"#]])
        XCTAssertEqual(reply.result(replaced, to: a).body, reply.result(replaced.json, to: a).body)

        var recontent = ToolResult.structured(["v": 1])
        recontent.content = [["type": "text", "text": "other"]]
        XCTAssertNil(recontent.structuredText)
        let body = try JSONParser.parse(reply.result(recontent, to: a).body)
        XCTAssertEqual(body["result"]?["content"]?.arrayValue?.first?["text"], "other")
        XCTAssertEqual(body["result"]?["structuredContent"], ["v": 1])
    }

    func testAPlainResultTakesTheGeneralPath() throws {
        let a = try accepted(id: 4, era: .modern)
        let plain = ToolResult(content: [["type": "text", "text": "hello"]])
        XCTAssertNil(plain.structuredText)
        XCTAssertEqual(reply.result(plain, to: a).body, reply.result(plain.json, to: a).body)
        XCTAssertEqual(ToolResult.failure("no").content, [["type": "text", "text": "no"]])
    }

    /// `tools/list` splices each tool's listing as serialised at registration; the answer must be
    /// the bytes the general path writes, with and without a next page, in every era.
    func testAToolsPageIsWrittenAsTheGeneralPathWritesIt() throws {
        let registry = ToolRegistry()
        try registry.register(WhoAmITool())
        try registry.register(ServerInfoTool(developmentMode: true))
        let all = registry.all[...]
        let listed = ToolResultReplyTests.listedReply
        for era in [ProtocolEra.legacy, .modern] {
            let a = try accepted(id: "list-\"1\"", era: era)
            for (page, cursor) in [(all, nil), (all.prefix(1), ToolCursor.encode(1)), (all.dropFirst(2), nil)] as [(ArraySlice<ToolRegistry.Entry>, String?)] {
                for scope in ["private", nil] as [String?] {
                    let fast = listed.tools(page, nextCursor: cursor, to: a, cacheable: scope)
                    let general = listed.result(toolsObject(page, nextCursor: cursor), to: a, cacheable: scope)
                    XCTAssertEqual(String(decoding: fast.body, as: UTF8.self), String(decoding: general.body, as: UTF8.self))
                    XCTAssertEqual(fast.headers.map { "\($0.0): \($0.1)" }, general.headers.map { "\($0.0): \($0.1)" })
                    let tools = try XCTUnwrap(JSONParser.parse(fast.body)["result"]?["tools"]?.arrayValue)
                    XCTAssertEqual(tools, page.map(\.definition.json))
                }
            }
        }
    }

    static let listedReply = MCPReply(server: ServerIdentity(name: "s", version: "1", instructions: nil, startedAt: 0),
                                      listTTLMilliseconds: 300_000)
}

/// The page's result object as the general path builds it: the oracle the spliced bytes must match.
private func toolsObject(_ tools: ArraySlice<ToolRegistry.Entry>, nextCursor: String?) -> JSONValue {
    var o = JSONObject()
    o["tools"] = .array(tools.map(\.listing))
    if let nextCursor { o["nextCursor"] = .string(nextCursor) }
    return .object(o)
}
