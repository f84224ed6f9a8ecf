import EntraAuth
import MCPJSON

/// How the gateway reaches Power BI for a caller.
public enum PowerBIAccessMode: String, Sendable {
    /// On-Behalf-Of the calling user: Power BI decides what they may see (RLS holds).
    case delegated
    /// The gateway's own identity (client credentials), limited to the workspaces mapped to the caller.
    case servicePrincipal = "service_principal"
}

/// The `powerbi` section. Present means the Power BI tools are offered.
public struct PowerBIConfig: Sendable {
    public enum Cloud: String, Sendable, CaseIterable {
        case `public`, gcc, gccHigh = "gcc_high", dod, china

        /// Login host, API base, token resource (Power BI national-cloud table).
        var endpoints: (authority: String, apiBase: String, resource: String) {
            switch self {
            case .public: return ("https://login.microsoftonline.com", "https://api.powerbi.com/v1.0/myorg", "https://analysis.windows.net/powerbi/api")
            case .gcc: return ("https://login.microsoftonline.com", "https://api.powerbigov.us/v1.0/myorg", "https://analysis.usgovcloudapi.net/powerbi/api")
            case .gccHigh: return ("https://login.microsoftonline.us", "https://api.high.powerbigov.us/v1.0/myorg", "https://high.analysis.usgovcloudapi.net/powerbi/api")
            case .dod: return ("https://login.microsoftonline.us", "https://api.mil.powerbigov.us/v1.0/myorg", "https://mil.analysis.usgovcloudapi.net/powerbi/api")
            case .china: return ("https://login.chinacloudapi.cn", "https://api.powerbi.cn/v1.0/myorg", "https://analysis.chinacloudapi.cn/powerbi/api")
            }
        }
    }

    /// executeQueries returns at most 100,000 rows per query.
    public static let apiRowLimit = 100_000

    public var cloud = Cloud.public
    public var authority: String
    public var apiBase: String
    public var resource: String
    public var accessMode = PowerBIAccessMode.delegated
    public var maxRows = 1000
    public var maxDAXChars = 10_000
    public var timeoutSeconds = 30
    public var connectTimeoutSeconds = 5
    public var maxResponseBytes = 16 << 20
    public var maxRetries = 2
    public var caBundle: String?
    public var allowInsecureHTTPForTesting = false

    public init(cloud: Cloud = .public) {
        self.cloud = cloud
        (authority, apiBase, resource) = cloud.endpoints
    }

    /// `<resource>/.default`: whatever the app registration was granted for Power BI.
    public var scope: String { resource + "/.default" }

    static func parse(_ s: ConfigSection, credential: CredentialConfig?) -> PowerBIConfig? {
        guard s.isPresent else { return nil }
        let cloudName = s.string("cloud", default: "public")
        let cloud = Cloud(rawValue: cloudName) ?? .public
        if Cloud(rawValue: cloudName) == nil {
            s.fail("cloud", "must be one of \(Cloud.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var c = PowerBIConfig(cloud: cloud)
        c.authority = credential?.authority ?? s.string("authority") ?? c.authority
        if credential?.authority != nil, s.string("authority") != nil {
            s.fail("authority", "is already set by credential.authority; set it in one place")
        }
        c.apiBase = s.string("api_base", default: c.apiBase)
        while c.apiBase.hasSuffix("/") { c.apiBase.removeLast() }
        c.resource = s.string("resource", default: c.resource)
        let mode = s.string("access_mode", default: "delegated")
        if let m = PowerBIAccessMode(rawValue: mode) { c.accessMode = m } else { s.fail("access_mode", "must be delegated or service_principal") }
        c.maxRows = s.int("max_rows", default: c.maxRows, range: 1...apiRowLimit)
        c.maxDAXChars = s.int("max_dax_chars", default: c.maxDAXChars, range: 16...200_000)
        c.timeoutSeconds = s.int("timeout_seconds", default: c.timeoutSeconds, range: 1...300)
        c.connectTimeoutSeconds = s.int("connect_timeout_seconds", default: c.connectTimeoutSeconds, range: 1...60)
        c.maxResponseBytes = s.int("max_response_bytes", default: c.maxResponseBytes, range: 65_536...(256 << 20))
        c.maxRetries = s.int("max_retries", default: c.maxRetries, range: 0...5)
        c.caBundle = s.string("ca_bundle")
        c.allowInsecureHTTPForTesting = s.bool("allow_insecure_http_for_testing", default: false)
        for (key, url) in [("api_base", c.apiBase), ("authority", c.authority)] {
            if !url.hasPrefix("https://") && !(c.allowInsecureHTTPForTesting && url.hasPrefix("http://")) {
                s.fail(key, "must be an https URL (plain http only with allow_insecure_http_for_testing)")
            }
        }
        if c.resource.isEmpty || c.resource.hasSuffix("/") { s.fail("resource", "must be the token resource without a trailing slash") }
        return c
    }
}

/// Power BI settings for one tenant (`tenants.<id>.powerbi`); they override the instance's.
public struct PowerBITenantSettings: Sendable, Equatable {
    public var accessMode: PowerBIAccessMode?
    /// When set, the tenant's callers reach only these workspaces (lower-cased GUIDs), in either mode.
    public var workspaces: Set<String>?

    public init(accessMode: PowerBIAccessMode? = nil, workspaces: Set<String>? = nil) {
        self.accessMode = accessMode
        self.workspaces = workspaces
    }

    /// Parses `{"access_mode": …, "workspaces": [GUID, …]}`; problems go to the section's errors.
    static func parse(_ s: ConfigSection) -> PowerBITenantSettings? {
        guard s.isPresent else { return nil }
        var t = PowerBITenantSettings()
        if let mode = s.string("access_mode") {
            if let m = PowerBIAccessMode(rawValue: mode) { t.accessMode = m } else { s.fail("access_mode", "must be delegated or service_principal") }
        }
        if let ids = s.strings("workspaces") {
            let bad = ids.filter { !IssuerTenantCheck.isGUID($0) }
            if !bad.isEmpty { s.fail("workspaces", "must be workspace ids (GUIDs); not: \(bad.prefix(3).joined(separator: ", "))") }
            t.workspaces = Set(ids.map { $0.lowercased() })
        }
        return t
    }

    /// For the tenants reader: the raw `powerbi` object of a tenant, checked now.
    public static func parse(_ object: JSONObject, path: String) throws -> PowerBITenantSettings? {
        let s = ConfigSection(object, path: path)
        let t = parse(s)
        let errors = s.finish()
        if !errors.isEmpty { throw ConfigErrors(errors) }
        return t
    }
}
