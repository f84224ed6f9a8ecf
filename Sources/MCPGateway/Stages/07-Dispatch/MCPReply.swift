import GatewaySupport
import MCPJSON

/// How an answer travels back in each era: results in a 200 envelope (2026-07-28 adds
/// `resultType` and `serverInfo`, and cache hints on lists), errors with the HTTP status the
/// transport mandates (modern: 4xx/500; legacy clients expect protocol errors in a 200).
struct MCPReply: Sendable {
    let server: ServerIdentity
    let listTTLMilliseconds: Int

    func result(_ result: JSONValue, to accepted: AcceptedMessage, cacheable scope: String? = nil) -> HTTPResponse {
        let body = accepted.era == .modern ? modern(result.objectValue ?? JSONObject(), cacheable: scope) : result
        return HTTPResponse.json(200, JSONRPCMessage.resultEnvelope(id: accepted.message.id, result: body))
    }

    /// A page of `tools/list`: each tool's listing spliced in as it was serialised at
    /// registration. The same bytes as `result` of the page's object (`tools`, `nextCursor`).
    func tools(_ tools: ArraySlice<ToolRegistry.Entry>, nextCursor: String?, to accepted: AcceptedMessage,
               cacheable scope: String?) -> HTTPResponse {
        splicedResult(to: accepted, cacheable: scope) { w in
            w.literal(#""tools":["#)
            var first = true
            for entry in tools {
                if !first { w.literal(",") }
                first = false
                w.json(entry.listingJSON)
            }
            w.literal("]")
            if let nextCursor {
                w.literal(#","nextCursor":"#)
                w.value(.string(nextCursor))
            }
        }
    }

    /// `{"jsonrpc":"2.0","id":…,"result":{` + what `members` writes + the modern era's
    /// additions + `}}`: a result written from parts serialised earlier.
    private func splicedResult(to accepted: AcceptedMessage, cacheable scope: String?,
                               _ members: (inout JSONWriter.Writer) -> Void) -> HTTPResponse {
        let body = JSONWriter.serialize { w in
            w.literal(#"{"jsonrpc":"2.0","id":"#)
            w.value(accepted.message.id ?? .null)
            w.literal(#","result":{"#)
            members(&w)
            if accepted.era == .modern { modernAdditions(&w, cacheable: scope) }
            w.literal("}}")
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: body)
    }

    /// What `modern(_:cacheable:)` adds to a result object that has none of its keys, in its order.
    private func modernAdditions(_ w: inout JSONWriter.Writer, cacheable scope: String?) {
        w.literal(#","resultType":"complete""#)
        if let scope {
            w.literal(#","ttlMs":"#)
            w.value(.integer(listTTLMilliseconds))
            w.literal(#","cacheScope":"#)
            w.value(.string(scope))
        }
        w.literal(#","_meta":"#)
        w.value(.object(JSONObject(pairs: [(MetaKey.serverInfo, server.json)])))
    }

    /// A tool's result. A structured one is written with its JSON serialised once, as both its
    /// text and its `structuredContent`: the same bytes as `result(tool.json, to:)`, with the keys
    /// in the same order (content, structuredContent, isError, then the modern era's additions).
    func result(_ tool: ToolResult, to accepted: AcceptedMessage) -> HTTPResponse {
        guard let text = tool.structuredText, tool.structuredContent != nil else { return result(tool.json, to: accepted) }
        return splicedResult(to: accepted, cacheable: nil) { w in
            w.literal(#""content":[{"type":"text","text":"#)
            w.string(utf8: text)
            w.literal(#"}],"structuredContent":"#)
            w.json(text)
            w.literal(tool.isError ? #","isError":true"# : #","isError":false"#)
        }
    }

    /// An error answer; the audit record notes its code.
    func failure(_ e: RPCError, to accepted: AcceptedMessage, exchange: inout Exchange) -> HTTPResponse {
        var e = e
        if e.httpStatus == nil {
            e.httpStatus = accepted.era == .modern ? (e.code == RPCErrorCode.internalError ? 500 : 400) : 200
        }
        exchange.verdict.reason = "error \(e.code)"
        return HTTPResponse.json(e.httpStatus ?? 400, JSONRPCMessage.errorEnvelope(id: accepted.message.id, error: e))
    }

    /// What 2026-07-28 requires on every result, and the cache hints on lists.
    private func modern(_ o: JSONObject, cacheable scope: String?) -> JSONValue {
        var o = o
        o["resultType"] = "complete"
        if let scope {
            o["ttlMs"] = .integer(listTTLMilliseconds)
            o["cacheScope"] = .string(scope)
        }
        var meta = o["_meta"]?.objectValue ?? JSONObject()
        meta[MetaKey.serverInfo] = server.json
        o["_meta"] = .object(meta)
        return .object(o)
    }
}
