import MCPJSON

/// JSON-RPC and MCP error codes used on the wire.
public enum RPCErrorCode {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    /// Implementation-defined: the caller is authenticated but lacks the permission.
    public static let forbidden = -32003
    /// Implementation-defined: too many requests; `data.retryAfterSeconds` says when to retry.
    public static let rateLimited = -32004
    /// 2026-07-28: HTTP headers do not match the body, or are missing or malformed.
    public static let headerMismatch = -32020
    public static let unsupportedProtocolVersion = -32022
}

/// A JSON-RPC error on its way back to the client, with the HTTP status it travels under.
public struct RPCError: Error, Equatable {
    public var code: Int
    public var message: String
    public var data: JSONValue?
    /// Set when the transport mandates one (400 for header mismatches, 404 for unknown modern methods).
    public var httpStatus: Int?

    public init(_ code: Int, _ message: String, data: JSONValue? = nil, httpStatus: Int? = nil) {
        self.code = code
        self.message = message
        self.data = data
        self.httpStatus = httpStatus
    }

    public static func invalidParams(_ message: String) -> RPCError { RPCError(RPCErrorCode.invalidParams, message) }

    var json: JSONValue {
        var o = JSONObject()
        o["code"] = .integer(code)
        o["message"] = .string(message)
        if let data { o["data"] = data }
        return .object(o)
    }
}

/// One parsed JSON-RPC message from a client.
public struct JSONRPCMessage: Sendable {
    public enum Kind: Equatable, Sendable { case request, notification, response }
    public let kind: Kind
    public let id: JSONValue?
    public let method: String
    public let params: JSONObject

    /// Validates the envelope. Anything that is not one well-formed JSON-RPC 2.0
    /// object is -32600.
    public static func parse(_ value: JSONValue) -> Result<JSONRPCMessage, RPCError> {
        guard case .object(let o) = value else {
            if case .array = value {
                return .failure(RPCError(RPCErrorCode.invalidRequest, "Batch requests are not supported: send one JSON-RPC message per POST"))
            }
            return .failure(RPCError(RPCErrorCode.invalidRequest, "The body must be a JSON-RPC 2.0 object"))
        }
        guard o["jsonrpc"] == .string("2.0") else {
            return .failure(RPCError(RPCErrorCode.invalidRequest, "\"jsonrpc\" must be \"2.0\""))
        }
        let id = o["id"]
        if let id {
            // An id is echoed byte for byte or refused. The parser holds integer literals that fit
            // 64 bits exactly; anything else numeric (a fraction, an exponent, more digits) is a
            // double that would be written back rounded, so it is refused rather than altered.
            switch id {
            case .string, .integer: break
            default:
                return .failure(RPCError(RPCErrorCode.invalidRequest,
                    "\"id\" must be a string or an integer from -9223372036854775808 to 9223372036854775807 written without fraction or exponent"))
            }
        }
        guard let methodValue = o["method"] else {
            if id != nil, o.contains("result") != o.contains("error") {
                return .success(JSONRPCMessage(kind: .response, id: id, method: "", params: JSONObject()))
            }
            return .failure(RPCError(RPCErrorCode.invalidRequest, "A request needs a \"method\""))
        }
        guard case .string(let method) = methodValue, !method.isEmpty else {
            return .failure(RPCError(RPCErrorCode.invalidRequest, "\"method\" must be a non-empty string"))
        }
        var params = JSONObject()
        if let p = o["params"] {
            guard case .object(let po) = p else {
                return .failure(RPCError(RPCErrorCode.invalidRequest, "\"params\" must be an object"))
            }
            params = po
        }
        return .success(JSONRPCMessage(kind: id == nil ? .notification : .request, id: id, method: method, params: params))
    }

    public static func resultEnvelope(id: JSONValue?, result: JSONValue) -> JSONValue {
        .object(JSONObject(pairs: [("jsonrpc", "2.0"), ("id", id ?? .null), ("result", result)]))
    }

    /// Errors raised before the id was known carry "id": null, as JSON-RPC 2.0 §5 requires.
    public static func errorEnvelope(id: JSONValue?, error: RPCError) -> JSONValue {
        var o = JSONObject()
        o["jsonrpc"] = "2.0"
        o["id"] = id ?? .null
        o["error"] = error.json
        return .object(o)
    }
}
