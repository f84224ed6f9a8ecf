import GatewaySupport

extension Gateway {
    /// An MCP endpoint answers an oversized body with a JSON-RPC error, as MCP clients read
    /// errors (the id is null: the body holding it was never read); other paths keep the plain JSON error.
    public func bodyTooLarge(path: String, detail: String) -> HTTPResponse {
        bodyRefused(413, path: path, "The request body is too large: \(detail)", otherwise: .bodyTooLarge(detail))
    }

    /// Likewise for a body that did not arrive before the front end's deadline.
    public func bodyTimedOut(path: String, detail: String) -> HTTPResponse {
        bodyRefused(408, path: path, "The request body did not arrive in time: \(detail)", otherwise: .bodyTimedOut(detail))
    }

    private func bodyRefused(_ status: Int, path: String, _ message: String, otherwise plain: HTTPResponse) -> HTTPResponse {
        guard instances.contains(where: { $0.mcpPath == path }) else { return plain }
        return .json(status, JSONRPCMessage.errorEnvelope(id: .null, error: RPCError(RPCErrorCode.invalidRequest, message)))
    }
}
