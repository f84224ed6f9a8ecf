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
