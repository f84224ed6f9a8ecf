import EntraAuth

extension GatewayConfig {
    /// An authenticating proxy in front of the web server (Entra application proxy with
    /// header-based SSO, or similar) that asserts who the user is in request headers.
    /// Off by default; when on, only peers in `sources` are believed, and the headers are
    /// removed from every other request before any stage sees them.
    public struct TrustedProxy: Sendable {
        public var enabled = false
        public var sources: [NetworkRange] = []
        public var userHeader = "x-authenticated-user-oid"
        public var tenantHeader = "x-authenticated-tenant-id"
        public var rolesHeader = "x-authenticated-roles"
        public var nameHeader = "x-authenticated-user-name"
        /// The tenant of every user of this proxy (single-tenant estates); the tenant header is then never read.
        public var defaultTenant: String?
        /// Which headers besides the user id the proxy sets itself, replacing whatever the client
        /// sent. Each is an opt-in: a header the proxy only passes through would let its client
        /// choose its own tenant, roles or name.
        public var assertsTenant = false
        public var assertsRoles = false
        public var assertsName = false

        public init() {}

        /// Every header this proxy may assert: the ones stripped from untrusted requests.
        public var assertedHeaders: [String] { [userHeader, tenantHeader, rolesHeader, nameHeader] }

        /// The identity headers this proxy does not set: stripped even from the proxy's own requests.
        public var headersNotAsserted: [String] {
            [(tenantHeader, assertsTenant), (rolesHeader, assertsRoles), (nameHeader, assertsName)]
                .filter { !$0.1 }.map(\.0)
        }
    }

    static func parseTrustedProxy(_ p: ConfigSection, into proxy: inout TrustedProxy, errors: inout [ConfigError]) {
        proxy.enabled = p.bool("enabled", default: false)
        for (i, text) in (p.strings("sources") ?? []).enumerated() {
            if let range = NetworkRange(text) { proxy.sources.append(range) } else {
                p.fail("sources[\(i)]", "\(text) is not an address or CIDR range such as 10.1.2.3 or 10.1.0.0/16")
            }
        }
        func header(_ key: String, _ current: String) -> String {
            let name = p.string(key, default: current).lowercased()
            if name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                p.fail(key, "must be an HTTP header name (letters, digits and '-')")
            }
            if ["authorization", "cookie", "host", "content-type", "content-length"].contains(name) {
                p.fail(key, "\(name) cannot carry an asserted identity")
            }
            return name
        }
        proxy.userHeader = header("user_header", proxy.userHeader)
        proxy.tenantHeader = header("tenant_header", proxy.tenantHeader)
        proxy.rolesHeader = header("roles_header", proxy.rolesHeader)
        proxy.nameHeader = header("name_header", proxy.nameHeader)
        if Set(proxy.assertedHeaders).count < proxy.assertedHeaders.count {
            p.fail("user_header", "user_header, tenant_header, roles_header and name_header must be four different headers")
        }
        proxy.defaultTenant = p.string("default_tenant")?.lowercased()
        if let t = proxy.defaultTenant, !IssuerTenantCheck.isGUID(t) { p.fail("default_tenant", "must be a tenant id (GUID)") }
        proxy.assertsTenant = p.bool("assert_tenant", default: false)
        proxy.assertsRoles = p.bool("assert_roles", default: false)
        proxy.assertsName = p.bool("assert_name", default: false)
        if proxy.assertsTenant && proxy.defaultTenant != nil {
            p.fail("assert_tenant", "cannot be combined with default_tenant: the tenant comes either from the proxy's header or from default_tenant")
        }
        if proxy.enabled && !proxy.assertsTenant && proxy.defaultTenant == nil {
            p.fail("default_tenant", "name the tenant of the proxy's users, or set assert_tenant when the proxy sets \(proxy.tenantHeader) itself")
        }
        if proxy.enabled && proxy.sources.isEmpty {
            p.fail("sources", "list the proxy's addresses: without them no request could be trusted")
        }
        errors += p.finish()
    }
}
