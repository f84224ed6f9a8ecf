import GatewaySupport
import Foundation
import MCPJSON

/// Serves one JSON-RPC request under the rules of its era. The transport stage has
/// already checked headers and chosen the era; this stage only knows methods.
public final class MCPDispatcher: @unchecked Sendable {
    public let registry: ToolRegistry
    public let server: ServerIdentity
    let pageSize: Int
    let listTTLMilliseconds: Int

    public init(registry: ToolRegistry, server: ServerIdentity, pageSize: Int, listTTLMilliseconds: Int = 300_000) {
        self.registry = registry
        self.server = server
        self.pageSize = max(1, pageSize)
        self.listTTLMilliseconds = listTTLMilliseconds
    }

    public struct Request {
        public let message: JSONRPCMessage
        public let era: ProtocolEra
        public let protocolVersion: String
        public let caller: Caller
        public let requestId: String
    }

    /// What the audit trail and logs want to know besides the answer.
    public struct Outcome {
        public var result: Result<JSONValue, RPCError>
        public var toolName: String?
        public var toolFailed = false
        /// The last HTTP status the tool got from its upstream (Power BI, a backend), for the audit trail.
        public var upstreamStatus: Int?
        /// Set when the tool exists but the caller lacks this permission.
        public var deniedPermission: String?
        /// Set when the tool needs the client to fetch a token with more claims (answered as 401).
        public var claimsChallenge: ClaimsChallenge?
    }

    public func dispatch(_ request: Request) -> Outcome {
        let m = request.message
        switch (request.era, m.method) {
        case (.modern, "server/discover"):
            return Outcome(result: .success(modernResult(discover(), cacheable: "public")))
        case (.legacy, "initialize"):
            return Outcome(result: initialize(m.params))
        case (.legacy, "ping"):
            return Outcome(result: .success(.object(JSONObject())))
        case (_, "tools/list"):
            let r = listTools(m.params, request: request)
            return Outcome(result: r.map { request.era == .modern ? modernResult($0, cacheable: "private") : JSONValue.object($0) })
        case (_, "tools/call"):
            var outcome = callTool(m.params, request: request)
            if request.era == .modern { outcome.result = outcome.result.map { modernResult($0, cacheable: nil) } }
            return outcome
        default:
            let status = request.era == .modern ? 404 : nil
            return Outcome(result: .failure(RPCError(RPCErrorCode.methodNotFound, "Method not found: \(m.method)",
                                                     httpStatus: status)))
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

    private func listTools(_ params: JSONObject, request: Request) -> Result<JSONObject, RPCError> {
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
        let visible = registry.visible(to: request.caller)
        guard offset <= visible.count else { return .failure(.invalidParams("Invalid cursor: it points past the end of the list")) }
        // Modern clients get the whole list; pagination is a legacy-era courtesy for large registries.
        let end = request.era == .modern ? visible.count : min(visible.count, offset + pageSize)
        var o = JSONObject()
        o["tools"] = .array(visible[offset..<end].map(\.listing))
        if end < visible.count { o["nextCursor"] = .string(ToolCursor.encode(end)) }
        return .success(o)
    }

    private func callTool(_ params: JSONObject, request: Request) -> Outcome {
        guard let name = params["name"]?.stringValue else {
            return Outcome(result: .failure(.invalidParams("tools/call needs params.name")))
        }
        var outcome = Outcome(result: .failure(.invalidParams("Unknown tool: \(name)")), toolName: name)
        guard let entry = registry.tool(named: name) else {
            if request.era == .modern { outcome.result = .failure(RPCError(RPCErrorCode.invalidParams, "Unknown tool: \(name)", httpStatus: 400)) }
            return outcome
        }
        let tool = entry.tool, definition = entry.definition
        if !request.caller.may(definition.permission) {
            outcome.deniedPermission = definition.permission
            outcome.result = .failure(RPCError(RPCErrorCode.forbidden, "Forbidden", httpStatus: 403))
            return outcome
        }
        var arguments = JSONObject()
        if let a = params["arguments"], !a.isNull {
            guard case .object(let o) = a else {
                outcome.result = .failure(.invalidParams("arguments must be an object"))
                return outcome
            }
            arguments = o
        }
        if let problem = SchemaValidator.validate(.object(arguments), against: definition.inputSchema) {
            outcome.result = .failure(.invalidParams("Invalid arguments for \(name): \(problem)"))
            return outcome
        }
        let context = ToolContext(caller: request.caller, requestId: request.requestId,
                                  protocolVersion: request.protocolVersion, era: request.era, server: server)
        var result: ToolResult
        do {
            result = try tool.call(arguments: arguments, context: context)
        } catch let e as ToolError {
            result = .failure(e.description)
            result.upstreamStatus = e.upstreamStatus
        } catch let c as ClaimsChallenge {
            outcome.claimsChallenge = c
            result = .failure(c.description)
        } catch {
            Log.shared.error("tool failed", ["tool": .string(name), "request_id": .string(request.requestId),
                                             "error": .string(String(describing: error))])
            result = .failure("The tool \(name) failed unexpectedly (request \(request.requestId)).")
        }
        outcome.toolFailed = result.isError
        outcome.upstreamStatus = result.upstreamStatus
        outcome.result = .success(result.json)
        return outcome
    }

    /// Adds what 2026-07-28 requires on every result, and the cache hints on lists.
    private func modernResult(_ o: JSONObject, cacheable scope: String?) -> JSONValue {
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

    private func modernResult(_ v: JSONValue, cacheable scope: String?) -> JSONValue {
        modernResult(v.objectValue ?? JSONObject(), cacheable: scope)
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
