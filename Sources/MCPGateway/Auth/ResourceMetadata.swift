import FoundationEssentials
import MCPJSON

/// RFC 9728 protected resource metadata for the MCP endpoint.
public struct ResourceMetadata: Sendable {
    public let resource: String
    public let authorizationServers: [String]
    public let scopesSupported: [String]
    public let resourceName: String
    /// Where the document is served: the path-suffixed well-known URL.
    public let metadataURL: String

    public init(publicURL: String, authorizationServers: [String], scopesSupported: [String], resourceName: String) {
        self.resource = publicURL
        self.authorizationServers = authorizationServers
        self.scopesSupported = scopesSupported
        self.resourceName = resourceName
        let u = URLComponents(string: publicURL)
        let origin = "\(u?.scheme ?? "https")://\(u?.host ?? "")\(u?.port.map { ":\($0)" } ?? "")"
        self.metadataURL = origin + "/.well-known/oauth-protected-resource" + (u?.path ?? "")
    }

    public var document: JSONValue {
        [
            "resource": .string(resource),
            "authorization_servers": JSONValue(authorizationServers),
            "scopes_supported": JSONValue(scopesSupported),
            "bearer_methods_supported": ["header"],
            "resource_name": .string(resourceName),
        ]
    }
}
