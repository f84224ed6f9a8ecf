import EntraAuth
import FoundationEssentials
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

    /// nil when the request carries no asserted identity from a trusted peer. Only the headers
    /// the configuration says the proxy sets are read; the tenant header never when
    /// `default_tenant` is set.
    func identity(_ request: HTTPRequest) -> Result<Principal, AuthFailure>? {
        guard proxy.trusts(request), let oidValue = request.headers[proxy.userHeader] else { return nil }
        func refuse(_ why: String, _ reason: String) -> Result<Principal, AuthFailure> {
            .failure(.proxyIdentityRefused(why: why, reason: reason))
        }
        if let merged = merged(oidValue, header: proxy.userHeader) { return refuse(merged, "proxy_merged_header") }
        let oid = String(oidValue.trimmingOWS()).lowercased()
        guard IssuerTenantCheck.isGUID(oid) else { return refuse("the user id must be an Entra object id (GUID)", "proxy_bad_user") }
        var tenant = proxy.defaultTenant
        if proxy.assertsTenant, let value = request.headers[proxy.tenantHeader] {
            if let merged = merged(value, header: proxy.tenantHeader) { return refuse(merged, "proxy_merged_header") }
            tenant = String(value.trimmingOWS()).lowercased()
        }
        guard let tenant, IssuerTenantCheck.isGUID(tenant) else {
            return refuse("the tenant must be one tenant id (GUID) in \(proxy.tenantHeader)", "proxy_bad_tenant")
        }
        guard acceptAnyTenant || allowedTenants.contains(tenant) else { return refuse("the tenant is not allowed here", "tenant_not_allowed") }
        let roles: [String]
        switch (proxy.assertsRoles ? request.headers[proxy.rolesHeader] : nil).map({ Self.roles(in: $0, header: proxy.rolesHeader) }) {
        case .success(let list)?: roles = list
        case .failure(let refusal)?: return .failure(refusal)
        case nil: roles = []
        }
        // A display name may hold ", " itself ("Lovelace, Ada"); it decides nothing.
        let name = proxy.assertsName ? request.headers[proxy.nameHeader].map { String($0.trimmingOWS().prefix(200)) } : nil
        // A delegated user with no scopes: permissions come from the asserted roles only.
        return .success(Principal(tenantId: tenant, objectId: oid, subject: oid, issuer: "trusted-proxy", clientAppId: nil,
                                  scopes: [], roles: roles, groups: nil, tokenVersion: nil, isAppOnly: false,
                                  expiresAt: Int64(Date().timeIntervalSince1970) + 60, displayName: name, userPrincipalName: nil))
    }

    /// Why a single-valued header holds several values, or nil. Web servers join a header sent
    /// twice into one value with commas, so a comma means a second, unknown sender.
    func merged(_ value: String, header: String) -> String? {
        value.contains(",") ? "\(header) holds more than one value (a header sent twice is joined with commas): exactly one is allowed" : nil
    }

    /// The app roles of one roles header the proxy set: values separated by a comma alone
    /// ("MCP.User,MCP.Admin"). ", " is what a web server makes of the header sent twice (the
    /// client's copy and the proxy's), so it is refused, as are empty values and spaces.
    static func roles(in value: String, header: String) -> Result<[String], AuthFailure> {
        let trimmed = value.trimmingOWS()
        if trimmed.isEmpty { return .success([]) }
        if trimmed.contains(", ") {
            return .failure(.proxyIdentityRefused(
                why: "\(header) was sent more than once (its values are joined with \", \"): the proxy must send one header, roles separated by \",\" alone",
                reason: "proxy_merged_header"))
        }
        let roles = trimmed.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard roles.allSatisfy({ !$0.isEmpty && !$0.contains(where: \.isWhitespace) }) else {
            return .failure(.proxyIdentityRefused(why: "\(header) must list app roles separated by \",\" alone, e.g. MCP.User,MCP.Admin",
                                                  reason: "proxy_bad_roles"))
        }
        return .success(roles)
    }
}
