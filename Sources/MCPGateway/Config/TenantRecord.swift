import MCPJSON

/// One client organisation on the allow-list: its Entra tenant id, a display name, and the
/// settings that apply only to it. The tenant is always the verified token's `tid`.
public struct TenantRecord: Sendable {
    /// Lower-cased GUID.
    public var id: String
    public var name: String
    /// Replaces the instance's rate limits for this tenant's users and the tenant as a whole.
    public var rateLimits: GatewayConfig.RateLimits?
    /// Power BI settings for this tenant (access mode, workspaces it may reach); they override the instance's.
    public var powerBI: PowerBITenantSettings?
    /// Per-backend overrides for this tenant, by backend name (`BackendConfig.parseTenantOverrides`).
    public var backends: [String: TenantBackendSettings]?
    /// Lower-cased email domains whose users belong here, when a non-Entra provider verified the email.
    public var emailDomains: [String] = []

    public init(id: String, name: String, rateLimits: GatewayConfig.RateLimits? = nil,
                powerBI: PowerBITenantSettings? = nil, backends: [String: TenantBackendSettings]? = nil) {
        self.id = id.lowercased()
        self.name = name
        self.rateLimits = rateLimits
        self.powerBI = powerBI
        self.backends = backends
    }
}
