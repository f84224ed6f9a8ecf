import EntraAuth
import GatewaySupport
import MCPJSON

/// Every refusal of the authorization layer, rendered in one place: the 401s and 403s with
/// their `WWW-Authenticate` challenges (RFC 6750, RFC 9728), the permission denial of a tool,
/// the claims challenge, and the 503 when signing keys are missing. No other code writes a
/// `WWW-Authenticate` header.
public struct Challenges: Sendable {
    public let metadata: ResourceMetadata
    let policy: PermissionPolicy
    let requiredScopes: [String]

    public init(metadata: ResourceMetadata, policy: PermissionPolicy, requiredScopes: [String]) {
        self.metadata = metadata
        self.policy = policy
        self.requiredScopes = requiredScopes
    }

    /// The answer to a failed authentication.
    public func refusal(_ failure: AuthFailure) -> HTTPResponse {
        switch failure {
        case .missingToken:
            return bearer(status: 401, error: nil, description: "No access token was sent: use the Authorization: Bearer header")
        case .wrongScheme:
            return bearer(status: 401, error: "invalid_request", description: "The Authorization header must use the Bearer scheme")
        case .invalidToken(let e):
            return bearer(status: 401, error: e.errorCode ?? "invalid_token", description: e.errorDescription)
        case .keysUnavailable:
            let e = TokenVerificationError.signingKeysUnavailable
            return HTTPResponse.error(503, "temporarily_unavailable", e.errorDescription, headers: [("Retry-After", "30")])
        case .providerUnavailable:
            let e = TokenVerificationError.providerUnavailable
            return HTTPResponse.error(503, "temporarily_unavailable", e.errorDescription, headers: [("Retry-After", "30")])
        case .insufficientScope:
            return bearer(status: 403, error: "insufficient_scope", description: "The access token lacks a required permission",
                          scopes: requiredScopes)
        case .proxyIdentityRefused(let why, _):
            return HTTPResponse.error(403, "invalid_identity", "The authenticating proxy's identity headers were refused: \(why)")
        }
    }

    /// A tool the caller may not call. When a delegated scope would grant it, the answer is
    /// the RFC 6750 step-up challenge; otherwise it names the roles to ask for.
    public func denial(permission: String, caller: Principal?, id: JSONValue?, tool: String) -> HTTPResponse {
        let scopes = policy.scopes(granting: permission)
        if let p = caller, !p.isAppOnly, !scopes.isEmpty {
            return bearer(status: 403, error: "insufficient_scope",
                          description: "The tool \(tool) needs a permission the access token does not grant", scopes: scopes)
        }
        let roles = policy.roles(granting: permission)
        let need = roles.isEmpty ? "no role grants it in this deployment" : "it needs the app role " + roles.joined(separator: " or ")
        let error = RPCError(RPCErrorCode.forbidden, "Forbidden: the tool \(tool) requires the \(permission) permission; \(need)",
                             data: ["permission": .string(permission), "roles": JSONValue(roles)])
        return HTTPResponse.json(403, JSONRPCMessage.errorEnvelope(id: id, error: error))
    }

    /// 401 with the claims Entra asks for (its claims-challenge format, plus our metadata pointer).
    public func claimsChallenge(_ c: ClaimsChallenge, id: JSONValue?) -> HTTPResponse {
        let encoded = Base64.encode(Array(c.claims.utf8))
        let header = "Bearer resource_metadata=\"\(Challenges.quote(metadata.metadataURL))\", error=\"insufficient_claims\", "
            + "error_description=\"\(Challenges.quote(c.description))\", claims=\"\(encoded)\""
        let error = RPCError(RPCErrorCode.insufficientClaims, c.description, data: ["claims": .string(encoded)])
        return HTTPResponse.json(401, JSONRPCMessage.errorEnvelope(id: id, error: error), headers: [("WWW-Authenticate", header)])
    }

    /// The challenge clients parse to find our metadata and the scopes to ask for.
    func bearer(status: Int, error: String?, description: String, scopes: [String]? = nil) -> HTTPResponse {
        var params = ["resource_metadata=\"\(Challenges.quote(metadata.metadataURL))\""]
        let scope = (scopes ?? metadata.scopesSupported).joined(separator: " ")
        if !scope.isEmpty { params.append("scope=\"\(Challenges.quote(scope))\"") }
        if let error {
            params.append("error=\"\(error)\"")
            params.append("error_description=\"\(Challenges.quote(description))\"")
        }
        return HTTPResponse.error(status, error ?? "invalid_token", description,
                                  headers: [("WWW-Authenticate", "Bearer " + params.joined(separator: ", "))])
    }

    static func quote(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
    }
}
