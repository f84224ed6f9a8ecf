import GatewaySupport
import MCPJSON

/// Thrown by a tool when Entra wants the user back for more claims (Conditional Access, MFA)
/// and the client said it can handle a claims challenge (`xms_cc` contains `cp1`).
/// The gateway answers 401 with `error="insufficient_claims"` and the claims to request.
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

extension Authenticator {
    /// 401 with the claims challenge (Entra's claims-challenge format, plus our metadata pointer).
    public func claimsChallenge(_ c: ClaimsChallenge, id: JSONValue?) -> HTTPResponse {
        let encoded = Base64.encode(Array(c.claims.utf8))
        let header = "Bearer resource_metadata=\"\(Authenticator.quote(metadata.metadataURL))\", error=\"insufficient_claims\", "
            + "error_description=\"\(Authenticator.quote(c.description))\", claims=\"\(encoded)\""
        let error = RPCError(RPCErrorCode.insufficientClaims, c.description, data: ["claims": .string(encoded)])
        return HTTPResponse.json(401, JSONRPCMessage.errorEnvelope(id: id, error: error), headers: [("WWW-Authenticate", header)])
    }
}
