import GatewayStore
import MCPJSON

/// A client of the authorization front, whichever way it became one: listed in the config,
/// registered (RFC 7591), or described by its Client ID Metadata Document.
struct OAuthClient: Sendable {
    /// How the client authenticates at the token and revocation endpoints (RFC 7591 §2).
    enum AuthMethod: String, Sendable {
        /// A public client: no secret (MCP clients, native apps, browser apps).
        case none
        case clientSecretBasic = "client_secret_basic"
        case clientSecretPost = "client_secret_post"

        var usesSecret: Bool { self != .none }
    }

    enum Source: Sendable {
        case config, registered, metadataDocument
    }

    let clientId: String
    /// What the consent page shows: the registered name, else the client id.
    let clientName: String
    let redirectURIs: [String]
    let grantTypes: [String]
    let authMethod: AuthMethod
    let source: Source
    /// Lower-case hex SHA-256 of the client secret; nil for public clients. Never the secret itself.
    let secretSHA256: String?

    /// Whether `redirectURI` (from an authorization or token request) is one of this client's.
    func allows(redirectURI: String) -> Bool {
        redirectURIs.contains { RedirectURIRule.matches(registered: $0, presented: redirectURI) }
    }
}

// In an extension, so the memberwise initialiser stays.
extension OAuthClient {
    init(clientId: String, metadata: ClientMetadata, source: Source, secretSHA256: String?) {
        self.init(clientId: clientId, clientName: metadata.clientName ?? clientId, redirectURIs: metadata.redirectURIs,
                  grantTypes: metadata.grantTypes, authMethod: metadata.authMethod, source: source, secretSHA256: secretSHA256)
    }

    /// A registered client or a cached metadata document from the store; nil when its metadata
    /// is not what the registration stored.
    init?(record: OAuthClientRecord) {
        guard let json = try? JSONParser.parse(record.metadataJSON, limits: JSONLimits(maxDepth: 8, maxBytes: 64 << 10)),
              let object = json.objectValue, let metadata = ClientMetadata(stored: object) else { return nil }
        let source: Source = record.source == .registered ? .registered : .metadataDocument
        // A confidential client without a digest on record could never authenticate: refuse it whole.
        guard metadata.authMethod.usesSecret == (record.secretSHA256 != nil) else { return nil }
        self.init(clientId: record.clientId, metadata: metadata, source: source, secretSHA256: record.secretSHA256)
    }

    /// A client from `oauth.clients`: it may use either grant.
    init(configured c: OAuthConfig.StaticClient) {
        self.init(clientId: c.clientId, clientName: c.clientName, redirectURIs: c.redirectURIs,
                  grantTypes: ClientMetadata.supportedGrantTypes, authMethod: c.authMethod, source: .config,
                  secretSHA256: c.secretSHA256)
    }
}
