import EntraAuth
import FoundationEssentials
import GatewaySupport
import MCPJSON

/// Turns a request's credentials into a `Caller`: the bearer token checked by the verifier
/// (signature, issuer, tenant, audience, lifetime), the required scopes, or the identity a
/// trusted proxy asserts. Refusals come back as an `AuthFailure`; `Challenges` words them.
public final class Authenticator: @unchecked Sendable {
    /// Entra's verifier; nil when Entra is not among the instance's providers.
    public let verifier: TokenVerifier?
    /// Every configured provider behind one router (`ProviderRouter`); Entra's verifier alone by default.
    let tokens: BearerTokenProvider
    let requiredScopes: [String]
    public let policy: PermissionPolicy
    let instance: String
    let tenants: [String: TenantRecord]
    let proxy: TrustedProxyIdentity?
    let metrics: GatewayMetrics
    /// Named in the log line when the signing keys cannot be had.
    let authority: String

    public init(verifier: TokenVerifier?, requiredScopes: [String], policy: PermissionPolicy = .standard,
                instance: String = "default", tenants: [String: TenantRecord] = [:],
                trustedProxy: GatewayConfig.TrustedProxy = .init(), allowedTenants: [String] = [],
                acceptAnyTenant: Bool = false, metrics: GatewayMetrics, authority: String = "",
                tokens: BearerTokenProvider? = nil) {
        self.verifier = verifier
        // Without Entra the builder always passes the router; a verifier-less authenticator trusts nobody.
        self.tokens = tokens ?? verifier ?? ProviderRouter(issuers: [:], fallbackJWT: nil)
        self.requiredScopes = requiredScopes
        self.policy = policy
        self.instance = instance
        self.tenants = tenants
        self.proxy = trustedProxy.enabled
            ? TrustedProxyIdentity(proxy: trustedProxy, allowedTenants: allowedTenants, acceptAnyTenant: acceptAnyTenant) : nil
        self.metrics = metrics
        self.authority = authority
    }

    public func authenticate(_ request: HTTPRequest) -> Result<Caller, AuthFailure> {
        let outcome = verify(request)
        if case .failure(let f) = outcome { metrics.recordAuthFailure(reason: f.reason) }
        return outcome
    }

    private func verify(_ request: HTTPRequest) -> Result<Caller, AuthFailure> {
        if let proxy, let asserted = proxy.identity(request) { return asserted.map { caller(for: $0) } }
        guard let header = request.headers["authorization"], !header.isEmpty else { return .failure(.missingToken) }
        // Only "Bearer <token>" counts; the scheme is case-insensitive (RFC 9110 §11.1).
        // utf8 views: counting Characters would walk the whole (kilobyte-long) token.
        guard header.utf8.count > 7, Authenticator.hasBearerScheme(header) else { return .failure(.wrongScheme) }
        let token = String(header.dropFirst(7).trimmingOWS())
        var cacheHit = false
        let verdict = tokens.check(token, cacheHit: &cacheHit)
        metrics.recordTokenCache(hit: cacheHit)
        switch verdict {
        case .failure(let e):
            if e == .providerUnavailable {
                Log.shared.error("identity provider unavailable: an opaque token or API key could not be checked", ["instance": .string(instance)])
                return .failure(.providerUnavailable)
            }
            if e.httpStatus == 503 {
                let unavailable = "token signing keys unavailable: the JWKS endpoint cannot be reached and no keys are cached"
                // Name the key source that failed: an oidc provider's issuer, else Entra's authority.
                if let issuer = (tokens as? ProviderRouter)?.routedIssuer(of: token) {
                    Log.shared.error(unavailable, ["issuer": .string(issuer), "instance": .string(instance)])
                } else {
                    Log.shared.error(unavailable, ["authority": .string(authority)])
                }
                return .failure(.keysUnavailable)
            }
            return .failure(.invalidToken(e))
        case .success(let principal):
            // required_scopes name Entra scopes (scp); other providers are bound by their own audiences.
            if principal.isEntra, !principal.isAppOnly, requiredScopes.contains(where: { !principal.scopes.contains($0) }) {
                return .failure(.insufficientScope)
            }
            // Only an Entra token can be an On-Behalf-Of assertion; no other provider's token travels on.
            return .success(caller(for: principal, token: principal.isEntra ? token : nil))
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
        RecentCallers.caller(of: self, principal: p, token: token) {
            let tenant = tenants[p.tenantId.lowercased()]
            let instance = self.instance
            let permissions = policy.permissions(for: p)
            return Caller(key: "\(p.tenantId)/\(p.objectId)", permissions: permissions,
                          tenantId: p.tenantId, principal: p, bearerToken: token, instance: instance, tenant: tenant) {
                var identity = p.json.objectValue ?? JSONObject()
                identity["authenticated"] = true
                identity["instance"] = .string(instance)
                if let tenant { identity["tenant_name"] = .string(tenant.name) }
                identity["permissions"] = JSONValue(permissions.sorted())
                return identity
            }
        }
    }
}
