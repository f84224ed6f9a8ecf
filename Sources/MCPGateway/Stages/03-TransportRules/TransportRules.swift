import FoundationEssentials
import GatewaySupport
import MCPJSON

/// Third stage: the MCP endpoint's transport rules (Streamable HTTP, JSON answers only):
/// method, Origin, Accept, Content-Type, body parsing, era selection and the 2026-07-28
/// header checks. They need no caller identity; what passes goes on as `exchange.message`.
public struct TransportRules: Stage {
    let allowedOrigins: Set<String>
    let jsonLimits: JSONLimits
    /// A DELETE ends a legacy session when sessions are on; otherwise only POST is served.
    let sessionsEnabled: Bool

    public init(allowedOrigins: [String], maxJSONDepth: Int, maxBodyBytes: Int, sessionsEnabled: Bool) {
        self.allowedOrigins = Set(allowedOrigins.map(TransportRules.normaliseOrigin))
        self.jsonLimits = JSONLimits(maxDepth: maxJSONDepth, maxBytes: maxBodyBytes, maxStringBytes: maxBodyBytes)
        self.sessionsEnabled = sessionsEnabled
    }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        if exchange.request.method == "DELETE" && sessionsEnabled {
            exchange.endsSession = true
            if let refusal = foreignOrigin(exchange.request) {
                exchange.verdict.deny("transport")
                return refusal
            }
            return next(&exchange)
        }
        switch screen(exchange.request) {
        case .answered(let response):
            exchange.verdict.deny("transport")
            return response
        case .accepted(let accepted):
            exchange.message = accepted
            return next(&exchange)
        }
    }

    enum Screening {
        case accepted(AcceptedMessage)
        case answered(HTTPResponse)
    }

    /// 403 for a browser on a site that is not allowed; requests without Origin pass.
    func foreignOrigin(_ request: HTTPRequest) -> HTTPResponse? {
        guard let origin = request.headers["origin"], !allowedOrigins.contains(TransportRules.normaliseOrigin(origin)) else { return nil }
        return rpcFailure(nil, RPCError(RPCErrorCode.invalidRequest, "Origin not allowed", httpStatus: 403))
    }

    /// Transport checks that need no caller identity. Origin comes first so a browser
    /// on a foreign site learns nothing else.
    func screen(_ request: HTTPRequest) -> Screening {
        guard request.method == "POST" else {
            return .answered(HTTPResponse.json(405, JSONRPCMessage.errorEnvelope(
                id: nil, error: RPCError(RPCErrorCode.invalidRequest, "Method Not Allowed: the MCP endpoint takes POST only")),
                headers: [("Allow", "POST")]))
        }
        if let refusal = foreignOrigin(request) { return .answered(refusal) }
        if let accept = request.headers["accept"], !TransportRules.acceptsJSON(accept) {
            return .answered(rpcFailure(nil, RPCError(RPCErrorCode.invalidRequest,
                "Not Acceptable: the client must accept application/json", httpStatus: 406)))
        }
        guard let type = request.headers["content-type"], TransportRules.isJSONMediaType(type) else {
            return .answered(rpcFailure(nil, RPCError(RPCErrorCode.invalidRequest,
                "Unsupported Media Type: the body must be application/json", httpStatus: 415)))
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(request.body, limits: jsonLimits)
        } catch let e as JSONParseError {
            let what = e.kind == .tooDeep ? "JSON nested too deeply" : e.kind == .tooLarge ? "JSON too large" : "Parse error"
            return .answered(rpcFailure(nil, RPCError(RPCErrorCode.parseError, "\(what): \(e.description)", httpStatus: 400)))
        } catch {
            return .answered(rpcFailure(nil, RPCError(RPCErrorCode.parseError, "Parse error", httpStatus: 400)))
        }
        let message: JSONRPCMessage
        switch JSONRPCMessage.parse(value) {
        case .failure(var e):
            e.httpStatus = 400
            return .answered(rpcFailure(value["id"].flatMap(TransportRules.usableId), e))
        case .success(let m): message = m
        }
        return selectEra(message, headers: request.headers)
    }

    // MARK: - Era selection and header checks

    private func selectEra(_ m: JSONRPCMessage, headers: HTTPHeaders) -> Screening {
        let headerVersion = headers["mcp-protocol-version"]
        let meta = m.params["_meta"]?.objectValue
        let metaVersion = meta?[MetaKey.protocolVersion]
        let modern = metaVersion != nil || headerVersion.map(ProtocolVersion.isModern) == true

        if !modern {
            if m.kind == .request || m.kind == .notification {
                if let v = headerVersion, !ProtocolVersion.isLegacy(v) {
                    return .answered(rpcFailure(m.id, RPCError(RPCErrorCode.invalidRequest,
                        "Unsupported MCP-Protocol-Version: \(v)",
                        data: ["supported": JSONValue(ProtocolVersion.all), "requested": .string(v)], httpStatus: 400)))
                }
            }
            let version = headerVersion ?? (m.method == "initialize" ? (m.params["protocolVersion"]?.stringValue ?? ProtocolVersion.legacyDefault) : ProtocolVersion.legacyDefault)
            return .accepted(AcceptedMessage(message: m, era: .legacy, protocolVersion: version))
        }

        if m.kind == .response {
            return .answered(rpcFailure(m.id, RPCError(RPCErrorCode.invalidRequest,
                "Clients do not send responses under 2026-07-28", httpStatus: 400)))
        }
        guard case .string(let version)? = metaVersion else {
            return .answered(rpcFailure(m.id, RPCError(RPCErrorCode.invalidParams,
                "params._meta[\"\(MetaKey.protocolVersion)\"] is required", httpStatus: 400)))
        }
        guard ProtocolVersion.isModern(version) else {
            return .answered(rpcFailure(m.id, RPCError(RPCErrorCode.unsupportedProtocolVersion,
                "Unsupported protocol version: \(version)",
                data: ["supported": JSONValue(ProtocolVersion.modern), "requested": .string(version)], httpStatus: 400)))
        }
        guard let hv = headerVersion else { return mismatch(m, "MCP-Protocol-Version header is required") }
        guard hv == version else {
            return mismatch(m, "MCP-Protocol-Version header '\(hv)' does not match body protocol version '\(version)'")
        }
        guard let rawMethod = headers["mcp-method"] else { return mismatch(m, "Mcp-Method header is required") }
        guard rawMethod == m.method else {
            return mismatch(m, "Mcp-Method header '\(rawMethod)' does not match body method '\(m.method)'")
        }
        if ["tools/call", "resources/read", "prompts/get"].contains(m.method) {
            let bodyName = (m.method == "resources/read" ? m.params["uri"] : m.params["name"])?.stringValue
            guard let raw = headers["mcp-name"] else { return mismatch(m, "Mcp-Name header is required for \(m.method)") }
            guard let decoded = HeaderValue.decode(raw) else { return mismatch(m, "Mcp-Name header is not validly encoded") }
            guard decoded == bodyName else {
                return mismatch(m, "Mcp-Name header value '\(decoded)' does not match body value '\(bodyName ?? "")'")
            }
        }
        guard case .object? = meta?[MetaKey.clientCapabilities] else {
            return .answered(rpcFailure(m.id, RPCError(RPCErrorCode.invalidParams,
                "params._meta[\"\(MetaKey.clientCapabilities)\"] is required", httpStatus: 400)))
        }
        return .accepted(AcceptedMessage(message: m, era: .modern, protocolVersion: version))
    }

    private func mismatch(_ m: JSONRPCMessage, _ message: String) -> Screening {
        .answered(rpcFailure(m.id, RPCError(RPCErrorCode.headerMismatch, "Header mismatch: \(message)", httpStatus: 400)))
    }

    func rpcFailure(_ id: JSONValue?, _ e: RPCError) -> HTTPResponse {
        HTTPResponse.json(e.httpStatus ?? 400, JSONRPCMessage.errorEnvelope(id: id, error: e))
    }

    // MARK: - Header helpers

    static func usableId(_ v: JSONValue) -> JSONValue? {
        switch v { case .string, .integer: return v; default: return nil }
    }

    static func isJSONMediaType(_ value: String) -> Bool {
        if value == "application/json" { return true }  // what clients send, without the split
        let type = value.split(separator: ";", maxSplits: 1).first?.trimmingOWS() ?? ""
        return type.utf8.count == 16 && type.lowercased() == "application/json"
    }

    /// True when the Accept header admits application/json with a non-zero weight.
    static func acceptsJSON(_ value: String) -> Bool {
        // Clients send the same few values every time; skip the parse for them.
        if value == "application/json, text/event-stream" || value == "application/json" || value == "*/*" { return true }
        for part in value.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingOWS().lowercased() }
            guard let range = pieces.first else { continue }
            if pieces.dropFirst().contains(where: { $0 == "q=0" || $0 == "q=0.0" || $0 == "q=0.00" || $0 == "q=0.000" }) { continue }
            if range == "application/json" || range == "application/*" || range == "*/*" { return true }
        }
        return false
    }

    static func normaliseOrigin(_ o: String) -> String {
        var s = o.trimmingOWS().lowercased()
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }
}
