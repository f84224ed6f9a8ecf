import MCPJSON

/// Thrown by a tool when Entra wants the user back for more claims (Conditional Access, MFA)
/// and the client said it can handle a claims challenge (`xms_cc` contains `cp1`).
/// `Challenges` renders it as 401 with `error="insufficient_claims"` and the claims to request.
public struct ClaimsChallenge: Error, CustomStringConvertible {
    /// The claims JSON exactly as Entra returned it.
    public let claims: String
    public let description: String

    public init(claims: String, message: String) {
        self.claims = claims
        self.description = message
    }
}

extension RPCErrorCode {
    /// Implementation-defined: the token needs more claims; `data.claims` is the base64 challenge.
    public static let insufficientClaims = -32005
}
