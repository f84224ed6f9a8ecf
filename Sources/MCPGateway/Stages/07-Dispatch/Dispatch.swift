import GatewaySupport
import MCPJSON

/// Seventh stage: the JSON-RPC method under the rules of its era. It answers
/// `server/discover`, `initialize`, `ping`, `tools/list` and unknown methods itself; a
/// `tools/call` for a known tool goes on, as `exchange.toolCall`, to authorization.
public struct Dispatch: Stage {
    let registry: ToolRegistry
    let server: ServerIdentity
    let pageSize: Int
    let reply: MCPReply

    public init(registry: ToolRegistry, server: ServerIdentity, pageSize: Int, listTTLMilliseconds: Int = 300_000) {
        self.registry = registry
        self.server = server
        self.pageSize = max(1, pageSize)
        self.reply = MCPReply(server: server, listTTLMilliseconds: listTTLMilliseconds)
    }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        guard let accepted = exchange.message, let caller = exchange.caller else { return next(&exchange) }
        // Past authentication, admission and sessions: the caller reaches the server's methods.
        exchange.verdict.decision = .allowed
        let m = accepted.message
        // Notifications and client responses carry nothing for us to answer.
        guard m.kind == .request else { return HTTPResponse(status: 202) }
        switch (accepted.era, m.method) {
        case (.modern, "server/discover"):
            return reply.result(.object(discover()), to: accepted, cacheable: "public")
        case (.legacy, "initialize"):
            switch initialize(m.params) {
            case .success(let r): return reply.result(r, to: accepted)
            case .failure(let e): return reply.failure(e, to: accepted, exchange: &exchange)
            }
        case (.legacy, "ping"):
            return reply.result(.object(JSONObject()), to: accepted)
        case (_, "tools/list"):
            switch listTools(m.params, era: accepted.era, caller: caller) {
            case .success(let page): return reply.tools(page.tools, nextCursor: page.nextCursor, to: accepted, cacheable: "private")
            case .failure(let e): return reply.failure(e, to: accepted, exchange: &exchange)
            }
        case (_, "tools/call"):
            guard let name = m.params["name"]?.stringValue else {
                return reply.failure(.invalidParams("tools/call needs params.name"), to: accepted, exchange: &exchange)
            }
            guard let entry = registry.tool(named: name) else {
                let status = accepted.era == .modern ? 400 : nil
                return reply.failure(RPCError(RPCErrorCode.invalidParams, "Unknown tool: \(name)", httpStatus: status),
                                     to: accepted, exchange: &exchange)
            }
            exchange.toolCall = ToolCall(entry: entry)
            return next(&exchange)
        default:
            let status = accepted.era == .modern ? 404 : nil
            return reply.failure(RPCError(RPCErrorCode.methodNotFound, "Method not found: \(m.method)", httpStatus: status),
                                 to: accepted, exchange: &exchange)
        }
    }

    // MARK: - Methods

    private var capabilities: JSONValue { ["tools": ["listChanged": false]] }

    private func discover() -> JSONObject {
        var o = JSONObject()
        o["supportedVersions"] = JSONValue(ProtocolVersion.modern)
        o["capabilities"] = capabilities
        if let i = server.instructions { o["instructions"] = .string(i) }
        return o
    }

    private func initialize(_ params: JSONObject) -> Result<JSONValue, RPCError> {
        guard let requested = params["protocolVersion"]?.stringValue else {
            return .failure(.invalidParams("initialize needs params.protocolVersion"))
        }
        // Echo a version we speak; otherwise offer our newest legacy one and let the client decide.
        let chosen = ProtocolVersion.isLegacy(requested) ? requested : ProtocolVersion.legacy[0]
        var o = JSONObject()
        o["protocolVersion"] = .string(chosen)
        o["capabilities"] = capabilities
        o["serverInfo"] = server.json
        if let i = server.instructions { o["instructions"] = .string(i) }
        return .success(.object(o))
    }

    /// One page of `tools/list`: the entries shown and the cursor of the next page, if any.
    struct ToolsPage {
        let tools: ArraySlice<ToolRegistry.Entry>
        let nextCursor: String?
    }

    private func listTools(_ params: JSONObject, era: ProtocolEra, caller: Caller) -> Result<ToolsPage, RPCError> {
        var offset = 0
        if let cursorValue = params["cursor"], !cursorValue.isNull {
            guard let cursor = cursorValue.stringValue else { return .failure(.invalidParams("cursor must be a string")) }
            if !cursor.isEmpty {  // 2026-07-28: an empty cursor means the first page
                guard let decoded = ToolCursor.decode(cursor) else {
                    return .failure(.invalidParams("Invalid cursor: pass back a nextCursor exactly as received"))
                }
                offset = decoded
            }
        }
        let visible = registry.visible(to: caller)
        guard offset <= visible.count else { return .failure(.invalidParams("Invalid cursor: it points past the end of the list")) }
        // Modern clients get the whole list; pagination is a legacy-era courtesy for large registries.
        let end = era == .modern ? visible.count : min(visible.count, offset + pageSize)
        return .success(ToolsPage(tools: visible[offset..<end], nextCursor: end < visible.count ? ToolCursor.encode(end) : nil))
    }
}

/// Opaque pagination cursors: a versioned offset, base64url so clients treat it as opaque.
enum ToolCursor {
    static func encode(_ offset: Int) -> String { Base64.encodeURL(Array("v1:\(offset)".utf8)) }

    static func decode(_ cursor: String) -> Int? {
        guard let bytes = Base64.decodeURL(Array(cursor.utf8)),
              let text = String(validating: bytes, as: UTF8.self), text.hasPrefix("v1:"),
              let n = Int(text.dropFirst(3)), n >= 0 else { return nil }
        return n
    }
}
