import GatewaySupport

extension Gateway {
    /// An MCP endpoint answers an oversized body with a JSON-RPC error, as MCP clients read
    /// errors (the id is null: the body holding it was never read); other paths keep the plain JSON error.
    public func bodyTooLarge(path: String, detail: String) -> HTTPResponse {
        guard instances.contains(where: { $0.mcpPath == path }) else { return .bodyTooLarge(detail) }
        return .json(413, JSONRPCMessage.errorEnvelope(id: .null, error: RPCError(RPCErrorCode.invalidRequest, "The request body is too large: \(detail)")))
    }
}
