import EntraAuth

/// Why authentication refused a request. `Challenges` turns each into its answer.
public enum AuthFailure: Error, Equatable, Sendable {
    case missingToken
    case wrongScheme
    /// The verifier refused the token (signature, issuer, audience, lifetime, tenant, ...).
    case invalidToken(TokenVerificationError)
    /// No signing keys at hand and the key endpoint cannot be reached: not the caller's fault.
    case keysUnavailable
    /// An opaque token's provider (GitHub, Google tokeninfo) cannot be asked: 503, not 401.
    case providerUnavailable
    /// A delegated token without one of `auth.required_scopes`.
    case insufficientScope
    /// A trusted proxy's identity headers did not hold up.
    case proxyIdentityRefused(why: String, reason: String)

    /// A short fixed code for logs, metrics and the audit trail.
    public var reason: String {
        switch self {
        case .missingToken: return "missing_token"
        case .wrongScheme: return "wrong_scheme"
        case .invalidToken(let e): return e.reasonCode
        case .keysUnavailable: return "keys_unavailable"
        case .providerUnavailable: return "provider_unavailable"
        case .insufficientScope: return "insufficient_scope"
        case .proxyIdentityRefused(_, let reason): return reason
        }
    }
}
