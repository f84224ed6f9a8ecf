import EntraAuth
import Foundation
import GatewaySupport

/// The identity an authenticating front proxy asserts in headers, believed only from the
/// proxy's own addresses: a user object id (GUID), its tenant, roles and name. The same
/// tenant allow-list and permission policy apply as for tokens.
struct TrustedProxyIdentity: Sendable {
    let proxy: GatewayConfig.TrustedProxy
    /// Lower-cased tenant ids a proxy-asserted identity may belong to.
    let allowedTenants: Set<String>
    let acceptAnyTenant: Bool

    init(proxy: GatewayConfig.TrustedProxy, allowedTenants: [String], acceptAnyTenant: Bool) {
        self.proxy = proxy
        self.allowedTenants = Set(allowedTenants.map { $0.lowercased() })
        self.acceptAnyTenant = acceptAnyTenant
    }

    /// nil when the request carries no asserted identity from a trusted peer.
    func identity(_ request: HTTPRequest) -> Result<Principal, AuthFailure>? {
        guard proxy.trusts(request), let oid = request.headers[proxy.userHeader]?.trimmingOWS() else { return nil }
        let tenant = (request.headers[proxy.tenantHeader].map { String($0.trimmingOWS()) } ?? proxy.defaultTenant)?.lowercased()
        func refuse(_ why: String, _ reason: String) -> Result<Principal, AuthFailure> {
            .failure(.proxyIdentityRefused(why: why, reason: reason))
        }
        guard IssuerTenantCheck.isGUID(String(oid)) else { return refuse("the user id must be an Entra object id (GUID)", "proxy_bad_user") }
        guard let tenant, IssuerTenantCheck.isGUID(tenant) else {
            return refuse("no tenant id (set \(proxy.tenantHeader) or trusted_proxy.default_tenant)", "proxy_bad_tenant")
        }
        guard acceptAnyTenant || allowedTenants.contains(tenant) else { return refuse("the tenant is not allowed here", "tenant_not_allowed") }
        let user = String(oid).lowercased()
        let roles = (request.headers[proxy.rolesHeader] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        let name = request.headers[proxy.nameHeader].map { String($0.trimmingOWS().prefix(200)) }
        // A delegated user with no scopes: permissions come from the asserted roles only.
        return .success(Principal(tenantId: tenant, objectId: user, subject: user, issuer: "trusted-proxy", clientAppId: nil,
                                  scopes: [], roles: roles, groups: nil, tokenVersion: nil, isAppOnly: false,
                                  expiresAt: Int64(Date().timeIntervalSince1970) + 60, displayName: name, userPrincipalName: nil))
    }
}
