import MCPJSON

/// The part of an OpenID Provider's discovery document this module needs.
public struct OpenIDConfiguration: Equatable, Sendable {
    public let issuer: String?
    public let jwksURI: String

    /// `{authority}/{tenant}/v2.0/.well-known/openid-configuration`.
    public static func discoveryURL(authority: String, tenant: String) -> String {
        trimmedAuthority(authority) + "/" + tenant + "/v2.0/.well-known/openid-configuration"
    }

    static func trimmedAuthority(_ authority: String) -> String {
        var a = Substring(authority)
        while a.hasSuffix("/") { a = a.dropLast() }
        return String(a)
    }

    public init(issuer: String?, jwksURI: String) {
        self.issuer = issuer
        self.jwksURI = jwksURI
    }

    public init(json bytes: [UInt8]) throws {
        let doc = try JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 8, maxBytes: 256 << 10, maxStringBytes: 8 << 10))
        guard let uri = doc["jwks_uri"]?.stringValue, !uri.isEmpty else {
            throw AuthConfigurationError("discovery document has no jwks_uri")
        }
        self.init(issuer: doc["issuer"]?.stringValue, jwksURI: uri)
    }
}

/// Fetches discovery documents and key sets over HTTPS. Stateless; the
/// caching and rate limits live in `JWKSKeyStore`.
public struct JWKSFetcher {
    public let http: HTTPFetching
    public let options: HTTPFetchOptions

    public init(http: HTTPFetching, options: HTTPFetchOptions) {
        self.http = http
        self.options = options
    }

    public func discover(authority: String, tenant: String) throws -> OpenIDConfiguration {
        let body = try getOK(OpenIDConfiguration.discoveryURL(authority: authority, tenant: tenant))
        let config = try OpenIDConfiguration(json: body)
        // The document is fetched over TLS, but its jwks_uri must be held to the same rule.
        guard options.permits(config.jwksURI) else { throw HTTPFetchError.insecureURL }
        return config
    }

    /// A generic provider's discovery document, refused unless its `issuer` is exactly the one
    /// configured: a document for another issuer must not supply the keys.
    public func discover(issuer: String) throws -> OpenIDConfiguration {
        let body = try getOK(OpenIDConfiguration.trimmedAuthority(issuer) + "/.well-known/openid-configuration")
        let config = try OpenIDConfiguration(json: body)
        guard config.issuer == issuer else { throw AuthConfigurationError("discovery document names another issuer") }
        guard options.permits(config.jwksURI) else { throw HTTPFetchError.insecureURL }
        return config
    }

    /// The key set document, checked to hold at least one usable key.
    public func fetchKeySet(jwksURI: String) throws -> (document: JSONValue, keys: KeySet) {
        let body = try getOK(jwksURI)
        let document = try JSONParser.parse(body, limits: JSONLimits(maxDepth: 8, maxBytes: options.maxResponseBytes, maxStringBytes: 64 << 10))
        let keys = try KeySet(jwks: document)
        guard !keys.isEmpty else { throw AuthConfigurationError("key set holds no usable signing keys") }
        return (document, keys)
    }

    private func getOK(_ url: String) throws -> [UInt8] {
        let response = try http.get(url)
        guard response.status == 200 else { throw HTTPFetchError.status(response.status) }
        return response.body
    }
}
