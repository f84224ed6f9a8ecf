import EntraAuth
import FoundationEssentials
import GatewayCrypto
import GatewaySupport
import MCPJSON

/// The `oauth` section: the instance's OAuth 2.1 authorization front in front of Entra ID
/// (`OAuthFront/`). Off unless `enabled`; `GatewayConfig.oauth` is nil then, and the instance
/// is a resource server only, exactly as without the section.
public struct OAuthConfig: Sendable {
    /// A client listed in the config (`oauth.clients`): known without registering.
    public struct StaticClient: Sendable {
        public var clientId: String
        public var clientName: String
        public var redirectURIs: [String]
        /// Lower-case hex SHA-256 of the secret in `client_secret_file`; nil for a public client.
        public var secretSHA256: String?
        /// `none` without a secret; with one, `client_secret_basic` unless the entry says `client_secret_post`.
        var authMethod: OAuthClient.AuthMethod
    }

    /// Resolved: `oauth.issuer`, else `server.public_url` without its last path segment; a root
    /// issuer ends in "/" (`https://host/`), any other has no trailing slash.
    public var issuer = ""
    /// The tenant segment of Entra's authorize and token URLs: the one allowed tenant, else `organizations`.
    public var entraTenant = "organizations"
    /// The API scopes asked of Entra (the server adds `offline_access openid`); default `auth.scopes_supported`.
    public var scopes: [String] = []
    /// Lower-case host names registered https redirect URIs must be on; nil: any host.
    public var redirectHosts: [String]?
    public var clients: [StaticClient] = []
    public var codeSeconds = 60
    public var authorizeMinutes = 10
    public var refreshDays = 90
    public var refreshGraceSeconds = 30
    public var consentDays = 30
    public var registrationsPerHour = 20
    public var metadataDocumentMaxBytes = 5120
    public var allowPrivateMetadataHostsForTesting = false
    /// PEM file of the CAs that metadata document hosts are verified against, instead of the
    /// system's (a private CA); nil: the system store. Verification is never switched off.
    public var caBundle: String?

    public init() {}

    /// The issuer's path: "" or e.g. "/client-a". The front's routes live under it.
    public var basePath: String {
        let path = StrictURL(issuer)?.path ?? ""
        return path == "/" ? "" : path
    }

    /// Where the front's endpoints are: the issuer without a trailing slash.
    public var endpointBase: String { issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer }

    /// A configured client secret shorter than this is not worth the name.
    static let minimumSecretLength = 32

    /// The section, or nil when it is absent or not enabled. Every key is read (and type-checked)
    /// either way; what an enabled front needs of the rest of the instance (`credential`, Entra
    /// authentication, a usable issuer, readable secret files) is checked only when it is on.
    static func parse(_ s: ConfigSection, instance c: GatewayConfig, errors: inout [ConfigError]) -> OAuthConfig? {
        guard s.isPresent else { return nil }
        let enabled = s.bool("enabled", default: false)
        var o = OAuthConfig()
        let configuredIssuer = s.string("issuer")
        o.issuer = configuredIssuer ?? derivedIssuer(publicURL: c.server.publicURL)
        // A root issuer is spelled with its slash (below); the checks see it without.
        if let u = StrictURL(o.issuer), u.path == "/" { o.issuer.removeLast() }
        let single = c.auth.allowedTenants.count == 1 && !c.auth.acceptAnyTenant ? c.auth.allowedTenants[0] : nil
        o.entraTenant = (s.string("entra_tenant") ?? single ?? "organizations").lowercased()
        o.scopes = s.strings("scopes") ?? c.auth.scopesSupported
        if let hosts = s.strings("redirect_hosts") {
            o.redirectHosts = hosts.map { $0.lowercased() }
            for (i, host) in hosts.enumerated() where StrictURL("https://" + host)?.host != host || host.hasPrefix("[") {
                s.fail("redirect_hosts[\(i)]", "\(host) is not a host name such as claude.ai")
            }
        }
        o.codeSeconds = s.int("code_seconds", default: o.codeSeconds, range: 10...600)
        o.authorizeMinutes = s.int("authorize_minutes", default: o.authorizeMinutes, range: 1...60)
        o.refreshDays = s.int("refresh_days", default: o.refreshDays, range: 1...3650)
        o.refreshGraceSeconds = s.int("refresh_grace_seconds", default: o.refreshGraceSeconds, range: 0...600)
        o.consentDays = s.int("consent_days", default: o.consentDays, range: 1...365)
        o.registrationsPerHour = s.int("registrations_per_hour", default: o.registrationsPerHour, range: 1...100_000)
        o.metadataDocumentMaxBytes = s.int("metadata_document_max_bytes", default: o.metadataDocumentMaxBytes, range: 1024...(1 << 20))
        o.allowPrivateMetadataHostsForTesting = s.bool("allow_private_metadata_hosts_for_testing", default: false)
        o.caBundle = s.string("ca_bundle")
        if let path = o.caBundle, !path.hasPrefix("/") { s.fail("ca_bundle", "must be an absolute path to a PEM file") }
        o.clients = parseClients(s, readSecrets: enabled, errors: &errors)

        for (i, scope) in o.scopes.enumerated() where scope.isEmpty || scope.contains(where: { $0.isWhitespace }) {
            s.fail("scopes[\(i)]", "must be one scope, without spaces")
        }
        if o.scopes.contains(where: FrontContext.signInScopes.contains) {
            s.fail("scopes", "list only the API scopes: the server adds \(FrontContext.signInScopes.joined(separator: " ")) itself")
        }
        if !(IssuerTenantCheck.isGUID(o.entraTenant) || ["organizations", "common"].contains(o.entraTenant)) {
            s.fail("entra_tenant", "must be a tenant id (GUID), organizations or common")
        }
        guard enabled else { return nil }

        if c.credential == nil {
            s.fail("enabled", "needs the credential section: the gateway signs users in at Entra as its own confidential client")
        }
        if c.auth.mode != .entra {
            s.fail("enabled", "needs auth.mode \"entra\": the front hands out Entra's tokens, which development mode does not accept")
        }
        if o.scopes.isEmpty {
            s.fail("scopes", "is required when auth.scopes_supported is empty: the API scopes to ask Entra for, e.g. api://…/mcp.tools")
        }
        if let problem = issuerProblem(o.issuer, publicURL: c.server.publicURL, allowHTTP: c.auth.allowInsecureHTTPForTesting) {
            s.fail("issuer", configuredIssuer == nil ? "derived from server.public_url (\(o.issuer)): \(problem)" : problem)
        }
        // An issuer with no path is `https://host/`: URL parsers (the Python MCP client's among them)
        // write it so, and the RFC 9207 `iss` on our redirects must equal the issuer they parsed.
        if StrictURL(o.issuer)?.path.isEmpty == true { o.issuer += "/" }
        return o
    }

    /// `https://h/mcp` -> `https://h`; `https://h/client-a/mcp` -> `https://h/client-a`.
    static func derivedIssuer(publicURL: String) -> String {
        guard let url = StrictURL(publicURL), !url.path.isEmpty, let last = publicURL.lastIndex(of: "/") else {
            return publicURL
        }
        return String(publicURL[..<last])
    }

    /// Why `issuer` cannot be this instance's issuer, or nil.
    static func issuerProblem(_ issuer: String, publicURL: String, allowHTTP: Bool) -> String? {
        guard let url = StrictURL(issuer), url.scheme == "https" || (allowHTTP && url.scheme == "http"), !url.hasUserInfo else {
            return "must be an absolute https URL (plain http only with auth.allow_insecure_http_for_testing)"
        }
        if url.query != nil || url.fragment != nil { return "must not have a query or fragment" }
        if issuer.hasSuffix("/") { return "must not end with a slash" }
        if !publicURL.hasPrefix(issuer + "/") {
            return "must be the start of server.public_url (\(publicURL)): the front's endpoints are served by this instance"
        }
        return nil
    }

    /// `clients: [{client_id, client_name, redirect_uris, client_secret_file?, token_endpoint_auth_method?}]`.
    static func parseClients(_ s: ConfigSection, readSecrets: Bool, errors: inout [ConfigError]) -> [StaticClient] {
        guard let value = s.json("clients") else { return [] }
        guard let list = value.arrayValue else { s.fail("clients", "must be a list of client objects"); return [] }
        var clients: [StaticClient] = []
        var seen: Set<String> = []
        for (i, item) in list.enumerated() {
            guard let object = item.objectValue else { s.fail("clients[\(i)]", "must be an object"); continue }
            let entry = ConfigSection(object, path: "\(s.path).clients[\(i)]")
            if let id = object["client_id"]?.stringValue, !seen.insert(id).inserted {
                entry.fail("client_id", "\(id) is listed twice")
            }
            if let client = parseClient(entry, readSecret: readSecrets), entry.errors.isEmpty { clients.append(client) }
            errors += entry.finish()
        }
        return clients
    }

    private static func parseClient(_ e: ConfigSection, readSecret: Bool) -> StaticClient? {
        let id = e.string("client_id", default: "")
        let name = e.string("client_name", default: "")
        let uris = e.strings("redirect_uris") ?? []
        let secretFile = e.string("client_secret_file")
        let methodName = e.string("token_endpoint_auth_method")
        let before = e.errors.count
        if id.isEmpty || id.utf8.count > 200 || !id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            e.fail("client_id", "is required: up to 200 visible ASCII characters")
        } else if id.hasPrefix("mcpc_") {
            e.fail("client_id", "must not start with mcpc_, which names dynamically registered clients")
        }
        if name.count > ClientMetadata.maxNameLength || !ClientMetadata.isPrintable(name) {
            e.fail("client_name", "is required: the name the consent page shows, up to \(ClientMetadata.maxNameLength) printable characters")
        }
        if uris.isEmpty || uris.count > ClientMetadata.maxRedirectURIs {
            e.fail("redirect_uris", "list 1 to \(ClientMetadata.maxRedirectURIs) redirect URIs")
        }
        for (i, uri) in uris.enumerated() {
            if let problem = RedirectURIRule.problem(with: uri, allowedHosts: nil) { e.fail("redirect_uris[\(i)]", problem) }
        }
        var method: OAuthClient.AuthMethod = secretFile == nil ? .none : .clientSecretBasic
        if let methodName {
            if let m = OAuthClient.AuthMethod(rawValue: methodName) { method = m } else {
                e.fail("token_endpoint_auth_method", "must be none, client_secret_basic or client_secret_post")
            }
        }
        if method.usesSecret && secretFile == nil {
            e.fail("client_secret_file", "is required by token_endpoint_auth_method \(method.rawValue)")
        } else if !method.usesSecret && secretFile != nil {
            e.fail("token_endpoint_auth_method", "is none, but client_secret_file is set: a public client has no secret")
        }
        var digest: String?
        if let path = secretFile {
            if !path.hasPrefix("/") {
                e.fail("client_secret_file", "must be an absolute path")
            } else if readSecret {
                digest = secretDigest(path, section: e)
            }
        }
        guard e.errors.count == before else { return nil }
        return StaticClient(clientId: id, clientName: name, redirectURIs: uris, secretSHA256: digest, authMethod: method)
    }

    /// SHA-256 hex of the secret in `path` (0600, surrounding whitespace ignored); nil after a problem.
    private static func secretDigest(_ path: String, section e: ConfigSection) -> String? {
        do {
            guard let bytes = try PrivateFiles.readSecret(path, what: "client secret file", maxBytes: 4096) else {
                e.fail("client_secret_file", "\(path) does not exist")
                return nil
            }
            let secret = String(decoding: bytes, as: UTF8.self).trimmingASCIIWhitespaceAndNewlines()
            guard secret.count >= minimumSecretLength else {
                e.fail("client_secret_file", "\(path) holds fewer than \(minimumSecretLength) characters: use a long random secret (openssl rand -hex 32)")
                return nil
            }
            return SHA256Digest(Array(secret.utf8)).hex
        } catch {
            e.fail("client_secret_file", "\(error)")
            return nil
        }
    }
}
