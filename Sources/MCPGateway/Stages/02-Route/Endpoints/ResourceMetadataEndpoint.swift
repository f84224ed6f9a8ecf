import GatewaySupport

/// `GET /.well-known/oauth-protected-resource[/<path>]`: RFC 9728 metadata, with CORS so
/// browser-based clients can read it.
public struct ResourceMetadataEndpoint: Sendable {
    static let wellKnownPrefix = "/.well-known/oauth-protected-resource"
    let metadata: ResourceMetadata

    public init(metadata: ResourceMetadata) { self.metadata = metadata }

    /// Where the document is served for an instance: always path-suffixed, and also bare when
    /// the instance is alone on its host.
    static func paths(mcpPath: String, sharesHost: Bool) -> Set<String> {
        let suffixed = wellKnownPrefix + mcpPath
        return sharesHost ? [suffixed] : [wellKnownPrefix, suffixed]
    }

    func respond(to request: HTTPRequest) -> HTTPResponse {
        let cors = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Methods", "GET, OPTIONS"),
                    ("Access-Control-Allow-Headers", "Authorization, Content-Type, MCP-Protocol-Version")]
        switch request.method {
        case "GET", "HEAD": return HTTPResponse.json(200, metadata.document, headers: cors)
        case "OPTIONS": return HTTPResponse(status: 204, headers: cors + [("Access-Control-Max-Age", "86400")])
        default: return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, OPTIONS")] + cors)
        }
    }
}
