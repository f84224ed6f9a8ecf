import MCPJSON

/// Something that can tell who a bearer token speaks for: a JWT verifier for one issuer,
/// the API key store, or an opaque-token provider asked over HTTPS. Thread-safe.
public protocol BearerTokenProvider: AnyObject, Sendable {
    func check(_ token: String, cacheHit: inout Bool) -> Result<Principal, TokenVerificationError>
}

/// A provider of tokens that carry no signature, known by their shape (a prefix).
public protocol OpaqueTokenProvider: BearerTokenProvider {
    func recognises(_ token: String) -> Bool
}

/// Chooses the provider for a token by what can be verified about it, never by a client's
/// hint: our API key prefix goes to the API key provider; a JWS goes to the provider whose
/// issuer equals its `iss` exactly (Entra's templated issuers are the fallback when Entra is
/// configured); anything else to the opaque-token providers in order. The `iss` is read
/// before the signature is checked only to pick the verifier, which then checks it again
/// against its own keys, so naming another issuer gains nothing.
public final class ProviderRouter: BearerTokenProvider, @unchecked Sendable {
    public let issuers: [String: BearerTokenProvider]
    public let fallbackJWT: BearerTokenProvider?
    /// The issuer templates (`{tenantid}` placeholders) the fallback verifier serves; a JWS whose
    /// `iss` fits none of them and no exact issuer is refused here as an unknown issuer.
    public let fallbackIssuerTemplates: [String]?
    public let apiKeys: (prefix: String, provider: BearerTokenProvider)?
    public let opaque: [OpaqueTokenProvider]
    public let maxTokenBytes: Int

    public init(issuers: [String: BearerTokenProvider], fallbackJWT: BearerTokenProvider?, fallbackIssuerTemplates: [String]? = nil,
                apiKeys: (prefix: String, provider: BearerTokenProvider)? = nil, opaque: [OpaqueTokenProvider] = [],
                maxTokenBytes: Int = CompactJWS.defaultMaxBytes) {
        self.issuers = issuers
        self.fallbackJWT = fallbackJWT
        self.fallbackIssuerTemplates = fallbackIssuerTemplates
        self.apiKeys = apiKeys
        self.opaque = opaque
        self.maxTokenBytes = maxTokenBytes
    }

    /// The configured issuer a JWS goes to by its exact `iss`, or nil (Entra, opaque tokens, API
    /// keys): only a configured value, so it may name the failing key source in a log line.
    public func routedIssuer(of token: String) -> String? {
        guard token.utf8.count <= maxTokenBytes, let issuer = CompactJWS.unverifiedIssuer(token), issuers[issuer] != nil else { return nil }
        return issuer
    }

    public func check(_ token: String, cacheHit: inout Bool) -> Result<Principal, TokenVerificationError> {
        guard token.utf8.count <= maxTokenBytes else { return .failure(.tokenTooLarge) }
        if let apiKeys, token.hasPrefix(apiKeys.prefix) { return apiKeys.provider.check(token, cacheHit: &cacheHit) }
        if let issuer = CompactJWS.unverifiedIssuer(token) {
            if let provider = issuers[issuer] { return provider.check(token, cacheHit: &cacheHit) }
            guard let fallbackJWT else { return .failure(.invalidIssuer) }
            if let templates = fallbackIssuerTemplates,
               !templates.contains(where: { IssuerTenantCheck.tenantSegment(of: issuer, template: $0) != nil }) {
                return .failure(.invalidIssuer)
            }
            return fallbackJWT.check(token, cacheHit: &cacheHit)
        }
        if CompactJWS.looksLikeJWS(token) {
            // Three segments but no readable iss: the JWT verifier says precisely what is wrong.
            return fallbackJWT?.check(token, cacheHit: &cacheHit) ?? .failure(.missingClaim(.iss))
        }
        // Opaque: the provider whose token shape this is (GitHub's prefixes, say); none → not ours.
        if let provider = opaque.first(where: { $0.recognises(token) }) { return provider.check(token, cacheHit: &cacheHit) }
        return fallbackJWT?.check(token, cacheHit: &cacheHit) ?? .failure(.invalidIssuer)
    }
}

extension CompactJWS {
    /// Two dots, as a JWS compact token has.
    static func looksLikeJWS(_ token: String) -> Bool { token.utf8.lazy.filter { $0 == UInt8(ascii: ".") }.count == 2 }

    /// The `iss` of a JWS payload, unverified: used only to choose which verifier checks it.
    static func unverifiedIssuer(_ token: String) -> String? {
        guard looksLikeJWS(token) else { return nil }
        let parts = token.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, let payload = Base64.decodeURL(parts[1]),
              let value = try? JSONParser.parse(payload, limits: jsonLimits) else { return nil }
        return value["iss"]?.stringValue
    }
}
