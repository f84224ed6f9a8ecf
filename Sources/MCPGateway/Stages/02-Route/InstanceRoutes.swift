import GatewaySupport

/// Second stage: which of the instance's endpoints the path names. The MCP endpoint goes on
/// through the rest of the stages; the instance's small endpoints (`/me`, the protected-
/// resource metadata) answer here. Process-wide paths never reach an instance (see `Gateway`).
public struct InstanceRoutes: Stage {
    let mcpPath: String
    let metadataPaths: Set<String>
    let metadata: ResourceMetadataEndpoint
    /// nil when several instances share the host: `/me` then belongs to none of them.
    let me: MeEndpoint?
    /// The OAuth authorization front's routes, when the instance has one (`oauth` section).
    let authorizationServer: AuthorizationServer?

    public init(mcpPath: String, metadataPaths: Set<String>, metadata: ResourceMetadataEndpoint, me: MeEndpoint?,
                authorizationServer: AuthorizationServer? = nil) {
        self.mcpPath = mcpPath
        self.metadataPaths = metadataPaths
        self.metadata = metadata
        self.me = me
        self.authorizationServer = authorizationServer
    }

    /// The paths this instance answers.
    public var paths: [String] {
        [mcpPath] + metadataPaths.sorted() + (me == nil ? [] : [MeEndpoint.path]) + (authorizationServer?.paths ?? [])
    }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        let path = exchange.request.path
        if path == mcpPath { return next(&exchange) }
        if let me, path == MeEndpoint.path { return me.respond(to: exchange.request, requestId: exchange.requestId) }
        if metadataPaths.contains(path) { return metadata.respond(to: exchange.request) }
        if let authorizationServer, let answer = authorizationServer.respond(&exchange) { return answer }
        return NotFound.response(for: exchange.request)
    }
}

/// The answer for a path nobody serves.
enum NotFound {
    static func response(for request: HTTPRequest) -> HTTPResponse {
        HTTPResponse.error(404, "not_found", "No such endpoint: \(Printable.path(request.path))")
    }
}
