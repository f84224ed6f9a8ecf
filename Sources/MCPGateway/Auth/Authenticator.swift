import GatewaySupport
import EntraAuth
import Foundation
import MCPJSON

/// Turns the Authorization header into a `Caller`, or into the 401/403/503 answer
/// that tells the client how to get a good token (RFC 6750, RFC 9728).
public final class Authenticator: @unchecked Sendable {
    public let verifier: TokenVerifier
    public let metadata: ResourceMetadata
    let requiredScopes: [String]
    public let policy: PermissionPolicy
    let instance: String
    let tenants: [String: TenantRecord]
    let trustedProxy: GatewayConfig.TrustedProxy
    /// Lower-cased tenant ids a proxy-asserted identity may belong to (tokens are checked by the verifier).
    let allowedTenants: Set<String>
    let acceptAnyTenant: Bool
    let metrics: GatewayMetrics?

    public init(verifier: TokenVerifier, metadata: ResourceMetadata, requiredScopes: [String],
                policy: PermissionPolicy = .standard, instance: String = "default",
                tenants: [String: TenantRecord] = [:], trustedProxy: GatewayConfig.TrustedProxy = .init(),
                allowedTenants: [String] = [], acceptAnyTenant: Bool = false, metrics: GatewayMetrics? = nil) {
        self.metrics = metrics
        self.verifier = verifier
        self.metadata = metadata
        self.requiredScopes = requiredScopes
        self.policy = policy
        self.instance = instance
        self.tenants = tenants
        self.trustedProxy = trustedProxy
        self.allowedTenants = Set(allowedTenants.map { $0.lowercased() })
        self.acceptAnyTenant = acceptAnyTenant
    }

    /// Whether the peer (REMOTE_ADDR) is one of the configured authenticating proxies.
    public func isTrustedProxy(_ request: HTTPRequest) -> Bool {
        guard trustedProxy.enabled, let peer = request.remoteAddress else { return false }
        return NetworkRange.any(trustedProxy.sources, contains: peer)
    }

    /// Removes the identity headers a trusted proxy would assert from a request that did not
    /// come from one, so no later stage can ever read a forged identity.
    public func stripUntrustedAssertions(_ request: inout HTTPRequest) {
        guard trustedProxy.enabled, !isTrustedProxy(request) else { return }
        var removed = false
        for name in trustedProxy.assertedHeaders where request.headers[name] != nil {
            request.headers[name] = nil
            removed = true
        }
        if removed {
            Log.shared.warning("identity headers from an untrusted peer were removed",
                               ["peer": .string(Gateway.printable(request.remoteAddress ?? "unknown"))])
        }
    }

    /// The identity a trusted proxy asserted: a user object id (GUID), its tenant, roles.
    /// The same tenant allow-list and permission policy apply as for tokens.
    func assertedIdentity(_ request: HTTPRequest) -> Outcome? {
        guard isTrustedProxy(request), let oid = request.headers[trustedProxy.userHeader]?.trimmingOWS() else { return nil }
        let tenant = (request.headers[trustedProxy.tenantHeader].map { String($0.trimmingOWS()) } ?? trustedProxy.defaultTenant)?.lowercased()
        func refuse(_ why: String, _ reason: String) -> Outcome {
            .refused(HTTPResponse.error(403, "invalid_identity", "The authenticating proxy's identity headers were refused: \(why)"),
                     reason: reason)
        }
        guard IssuerTenantCheck.isGUID(String(oid)) else { return refuse("the user id must be an Entra object id (GUID)", "proxy_bad_user") }
        guard let tenant, IssuerTenantCheck.isGUID(tenant) else {
            return refuse("no tenant id (set \(trustedProxy.tenantHeader) or trusted_proxy.default_tenant)", "proxy_bad_tenant")
        }
        guard acceptAnyTenant || allowedTenants.contains(tenant) else { return refuse("the tenant is not allowed here", "tenant_not_allowed") }
        let user = String(oid).lowercased()
        let roles = (request.headers[trustedProxy.rolesHeader] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        let name = request.headers[trustedProxy.nameHeader].map { String($0.trimmingOWS().prefix(200)) }
        // A delegated user with no scopes: permissions come from the asserted roles only.
        let principal = Principal(tenantId: tenant, objectId: user, subject: user, issuer: "trusted-proxy", clientAppId: nil,
                                  scopes: [], roles: roles, groups: nil, tokenVersion: nil, isAppOnly: false,
                                  expiresAt: Int64(Date().timeIntervalSince1970) + 60, displayName: name, userPrincipalName: nil)
        return .authenticated(caller(for: principal, token: nil), principal)
    }

    public enum Outcome {
        case authenticated(Caller, Principal)
        case refused(HTTPResponse, reason: String)
    }

    public func authenticate(_ request: HTTPRequest) -> Outcome {
        let outcome = verify(request)
        if let metrics, case .refused(_, let reason) = outcome { metrics.recordAuthFailure(reason: reason) }
        return outcome
    }

    private func verify(_ request: HTTPRequest) -> Outcome {
        if trustedProxy.enabled, let asserted = assertedIdentity(request) { return asserted }
        guard let header = request.headers["authorization"], !header.isEmpty else {
            return .refused(challenge(status: 401, error: nil, description: "No access token was sent: use the Authorization: Bearer header"),
                            reason: "missing_token")
        }
        // Only "Bearer <token>" counts; the scheme is case-insensitive (RFC 9110 §11.1).
        // utf8 views: counting Characters would walk the whole (kilobyte-long) token.
        guard header.utf8.count > 7, Authenticator.hasBearerScheme(header) else {
            return .refused(challenge(status: 401, error: "invalid_request", description: "The Authorization header must use the Bearer scheme"),
                            reason: "wrong_scheme")
        }
        let token = String(header.dropFirst(7).trimmingOWS())
        var cacheHit = false
        let verdict = verifier.check(token, cacheHit: &cacheHit)
        metrics?.recordTokenCache(hit: cacheHit)
        switch verdict {
        case .failure(let e):
            if e.httpStatus == 503 {
                Log.shared.error("token signing keys unavailable: the JWKS endpoint cannot be reached and no keys are cached",
                                 ["authority": .string(metadata.authorizationServers.first ?? "")])
                return .refused(HTTPResponse.error(503, "temporarily_unavailable", e.errorDescription, headers: [("Retry-After", "30")]),
                                reason: "keys_unavailable")
            }
            return .refused(challenge(status: 401, error: e.errorCode ?? "invalid_token", description: e.errorDescription),
                            reason: Authenticator.reasonCode(e))
        case .success(let principal):
            if !principal.isAppOnly {
                let missing = requiredScopes.filter { !principal.scopes.contains($0) }
                if !missing.isEmpty {
                    return .refused(challenge(status: 403, error: "insufficient_scope",
                                              description: "The access token lacks a required permission",
                                              scopes: requiredScopes),
                                    reason: "insufficient_scope")
                }
            }
            return .authenticated(caller(for: principal, token: token), principal)
        }
    }

    /// "Bearer " in any letter case, compared on bytes.
    static func hasBearerScheme(_ header: String) -> Bool {
        var matched = 0
        for (b, want) in zip(header.utf8, "bearer ".utf8) {
            let folded = b >= 0x41 && b <= 0x5A ? b | 0x20 : b
            guard folded == want else { return false }
            matched += 1
        }
        return matched == 7
    }

    func caller(for p: Principal, token: String? = nil) -> Caller {
        let tenant = tenants[p.tenantId.lowercased()]
        let instance = self.instance
        return Caller(isAuthenticated: true, key: "\(p.tenantId)/\(p.objectId)", permissions: policy.permissions(for: p),
                      tenantId: p.tenantId, principal: p, bearerToken: token, instance: instance, tenant: tenant) {
            var identity = p.json.objectValue ?? JSONObject()
            identity["authenticated"] = true
            identity["instance"] = .string(instance)
            if let tenant { identity["tenant_name"] = .string(tenant.name) }
            identity["permissions"] = JSONValue(self.policy.permissions(for: p).sorted())
            return identity
        }
    }

    /// A call the caller may not make. When a delegated scope would grant it, the
    /// answer is the RFC 6750 step-up challenge; otherwise it names the roles to ask for.
    public func denial(permission: String, caller: Principal?, id: JSONValue?, tool: String) -> HTTPResponse {
        let scopes = policy.scopes(granting: permission)
        if let p = caller, !p.isAppOnly, !scopes.isEmpty {
            return challenge(status: 403, error: "insufficient_scope",
                             description: "The tool \(tool) needs a permission the access token does not grant", scopes: scopes)
        }
        let roles = policy.roles(granting: permission)
        let need = roles.isEmpty ? "no role grants it in this deployment" : "it needs the app role " + roles.joined(separator: " or ")
        let error = RPCError(RPCErrorCode.forbidden, "Forbidden: the tool \(tool) requires the \(permission) permission; \(need)",
                             data: ["permission": .string(permission), "roles": JSONValue(roles)])
        return HTTPResponse.json(403, JSONRPCMessage.errorEnvelope(id: id, error: error))
    }

    /// The challenge clients parse to find our metadata and the scopes to ask for.
    public func challenge(status: Int, error: String?, description: String, scopes: [String]? = nil) -> HTTPResponse {
        var params = ["resource_metadata=\"\(Authenticator.quote(metadata.metadataURL))\""]
        let scope = (scopes ?? metadata.scopesSupported).joined(separator: " ")
        if !scope.isEmpty { params.append("scope=\"\(Authenticator.quote(scope))\"") }
        if let error {
            params.append("error=\"\(error)\"")
            params.append("error_description=\"\(Authenticator.quote(description))\"")
        }
        return HTTPResponse.error(status, error ?? "invalid_token", description,
                                  headers: [("WWW-Authenticate", "Bearer " + params.joined(separator: ", "))])
    }

    static func quote(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    /// A short machine-readable reason for logs and metrics: the error's case name.
    static func reasonCode(_ e: TokenVerificationError) -> String {
        if let label = Mirror(reflecting: e).children.first?.label { return label }
        // Cases without associated values have no children; their name is the value itself.
        switch e {
        case .tokenTooLarge: return "tokenTooLarge"
        case .unsupportedAlgorithm: return "unsupportedAlgorithm"
        case .missingKeyID: return "missingKeyID"
        case .criticalHeaderNotSupported: return "criticalHeaderNotSupported"
        case .graphToken: return "graphToken"
        case .unknownSigningKey: return "unknownSigningKey"
        case .signingKeyTooSmall: return "signingKeyTooSmall"
        case .algorithmKeyMismatch: return "algorithmKeyMismatch"
        case .badSignature: return "badSignature"
        case .expired: return "expired"
        case .notYetValid: return "notYetValid"
        case .invalidIssuer: return "invalidIssuer"
        case .invalidAudience: return "invalidAudience"
        case .tenantNotAllowed: return "tenantNotAllowed"
        case .tenantIssuerMismatch: return "tenantIssuerMismatch"
        case .delegatedTokenNotAccepted: return "delegatedTokenNotAccepted"
        case .appOnlyTokenNotAccepted: return "appOnlyTokenNotAccepted"
        case .signingKeysUnavailable: return "signingKeysUnavailable"
        case .malformedToken, .missingClaim: return "malformedToken"
        }
    }
}

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
