/// Why a bearer token was not accepted.
///
/// Every description is a fixed sentence chosen here: nothing from the token is
/// ever echoed, so the text is safe to put in a `WWW-Authenticate` header and in
/// logs. None contains `scope=`, because clients pick that parameter out of the
/// challenge with a regular expression.
public enum TokenVerificationError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformedToken(MalformedReason)
    case tokenTooLarge
    case unsupportedAlgorithm
    case missingKeyID
    case criticalHeaderNotSupported
    /// The header carries a `nonce`: a Microsoft Graph token, which cannot be validated.
    case graphToken
    case unknownSigningKey
    /// The JWKS names this key, but it was refused on load (RSA under 2048 bits).
    case signingKeyTooSmall
    /// The key exists but is bound to another algorithm or key type.
    case algorithmKeyMismatch
    case badSignature
    case missingClaim(RequiredClaim)
    case expired
    case notYetValid
    case invalidIssuer
    case invalidAudience
    case tenantNotAllowed
    case tenantIssuerMismatch
    case delegatedTokenNotAccepted
    case appOnlyTokenNotAccepted
    /// No usable signing keys and the key endpoint could not be reached.
    /// Not the caller's fault: the HTTP layer answers 503, not 401.
    case signingKeysUnavailable
    /// `azp` is not the client this provider is configured to accept.
    case invalidAuthorizedParty
    /// The tenant would come from the email's domain, but the provider did not verify the email.
    case emailNotVerified
    /// No tenant claim, fixed tenant or mapped email domain places the user in a tenant.
    case noTenantForUser
    /// Not one of our API keys (wrong shape, unknown id or wrong secret: never said which).
    case invalidAPIKey
    case revokedAPIKey
    /// An opaque token's provider could not be asked; like missing keys, a 503.
    case providerUnavailable
    /// The opaque token's provider said it is not a valid token (unknown, expired or revoked).
    case rejectedByProvider
    /// A GitHub user in none of the organisations this API accepts.
    case organizationNotAllowed
    /// The token may not show what the provider is configured to check (GitHub's read:org).
    case providerScopeMissing

    public enum MalformedReason: Equatable, Sendable {
        case segmentCount
        case invalidBase64URL
        case headerNotJSONObject
        case payloadNotJSONObject
        case emptySignature
        case invalidHeaderField
        case invalidClaim
    }

    public enum RequiredClaim: String, Equatable, Sendable {
        case exp, iss, aud, tid, oid, sub
    }

    /// The RFC 6750 `error` value, or nil when the token is not at fault
    /// (`signingKeysUnavailable`), where no Bearer error should be sent.
    public var errorCode: String? {
        httpStatus == 503 ? nil : "invalid_token"
    }

    /// The status the HTTP layer should answer with.
    public var httpStatus: Int {
        self == .signingKeysUnavailable || self == .providerUnavailable ? 503 : 401
    }

    /// The RFC 6750 `error_description`: precise, token-free, quote-free.
    public var errorDescription: String {
        switch self {
        case .malformedToken(let reason):
            switch reason {
            case .segmentCount: return "The access token is malformed: a JWS compact token has exactly three segments."
            case .invalidBase64URL: return "The access token is malformed: a segment is not unpadded base64url."
            case .headerNotJSONObject: return "The access token is malformed: the header is not a JSON object."
            case .payloadNotJSONObject: return "The access token is malformed: the payload is not a JSON object."
            case .emptySignature: return "The access token is malformed: the signature is empty."
            case .invalidHeaderField: return "The access token is malformed: a header field has the wrong type."
            case .invalidClaim: return "The access token is malformed: a claim has the wrong type."
            }
        case .tokenTooLarge: return "The access token is larger than this API accepts."
        case .unsupportedAlgorithm: return "The access token is signed with an algorithm this API does not accept."
        case .missingKeyID: return "The access token header has no key ID (kid)."
        case .criticalHeaderNotSupported: return "The access token has critical header parameters (crit), which this API does not support."
        case .graphToken:
            return "The access token has a nonce header: it is a Microsoft Graph token, which cannot be validated and is not for this API. Request a token for this API instead."
        case .unknownSigningKey: return "The access token is signed with a key that is not among the issuer's current signing keys."
        case .signingKeyTooSmall: return "The access token is signed with a key that is too small to be trusted."
        case .algorithmKeyMismatch: return "The access token's algorithm does not match its signing key."
        case .badSignature: return "The access token signature is invalid."
        case .missingClaim(let claim): return "The access token has no \(claim.rawValue) claim."
        case .expired: return "The access token has expired."
        case .notYetValid: return "The access token is not valid yet."
        case .invalidIssuer: return "The access token was issued by an issuer this API does not trust."
        case .invalidAudience: return "The access token is for another audience, not this API."
        case .tenantNotAllowed: return "The access token's tenant is not allowed to use this API."
        case .tenantIssuerMismatch: return "The access token's tenant ID (tid) does not match its issuer."
        case .delegatedTokenNotAccepted: return "This API does not accept delegated (user) tokens."
        case .appOnlyTokenNotAccepted: return "This API does not accept app-only tokens."
        case .signingKeysUnavailable: return "The token signing keys are temporarily unavailable; try again later."
        case .invalidAuthorizedParty: return "The access token was issued to a client (azp) this API does not accept."
        case .emailNotVerified:
            return "The access token's email is not verified by its provider, so it cannot place the user in a tenant."
        case .noTenantForUser: return "The access token names no tenant this API serves (no tenant claim and no mapped email domain)."
        case .invalidAPIKey: return "The API key is not valid."
        case .revokedAPIKey: return "The API key has been revoked."
        case .providerUnavailable: return "The token's identity provider cannot be reached right now; try again later."
        case .rejectedByProvider: return "The access token was refused by its identity provider: it is unknown, expired or revoked."
        case .organizationNotAllowed: return "The token's user is not a member of an organization this API accepts."
        case .providerScopeMissing:
            return "The access token may not show the user's organizations: it needs the read:org scope (classic and OAuth tokens) or organization read access."
        }
    }

    public var description: String { errorDescription }

    /// A short fixed name for logs, metrics labels and the audit trail: the case's name.
    public var reasonCode: String {
        switch self {
        case .malformedToken: return "malformedToken"
        case .tokenTooLarge: return "tokenTooLarge"
        case .unsupportedAlgorithm: return "unsupportedAlgorithm"
        case .missingKeyID: return "missingKeyID"
        case .criticalHeaderNotSupported: return "criticalHeaderNotSupported"
        case .graphToken: return "graphToken"
        case .unknownSigningKey: return "unknownSigningKey"
        case .signingKeyTooSmall: return "signingKeyTooSmall"
        case .algorithmKeyMismatch: return "algorithmKeyMismatch"
        case .badSignature: return "badSignature"
        case .missingClaim: return "missingClaim"
        case .expired: return "expired"
        case .notYetValid: return "notYetValid"
        case .invalidIssuer: return "invalidIssuer"
        case .invalidAudience: return "invalidAudience"
        case .tenantNotAllowed: return "tenantNotAllowed"
        case .tenantIssuerMismatch: return "tenantIssuerMismatch"
        case .delegatedTokenNotAccepted: return "delegatedTokenNotAccepted"
        case .appOnlyTokenNotAccepted: return "appOnlyTokenNotAccepted"
        case .signingKeysUnavailable: return "signingKeysUnavailable"
        case .invalidAuthorizedParty: return "invalidAuthorizedParty"
        case .emailNotVerified: return "emailNotVerified"
        case .noTenantForUser: return "noTenantForUser"
        case .invalidAPIKey: return "invalidAPIKey"
        case .revokedAPIKey: return "revokedAPIKey"
        case .providerUnavailable: return "providerUnavailable"
        case .rejectedByProvider: return "rejectedByProvider"
        case .organizationNotAllowed: return "organizationNotAllowed"
        case .providerScopeMissing: return "providerScopeMissing"
        }
    }
}

/// A configuration the verifier refuses to start with.
public struct AuthConfigurationError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
