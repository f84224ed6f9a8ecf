/// The OAuth authorization front's state (clients, pending authorizations, codes, grants,
/// refresh tokens), shared by every process so a sign-in started in one mod_fcgid process,
/// a restart or a CGI run finishes in another. Only digests of our own codes, refresh tokens
/// and client secrets are kept; Entra's tokens only sealed (AES-256-GCM, by the caller).
public protocol OAuthStore: AnyObject, Sendable {
    // MARK: clients

    /// A registered client, or a cached Client ID Metadata Document still within its lifetime.
    func oauthClient(id: String, now: Double) throws -> OAuthClientRecord?
    /// Stores or replaces a client (a fresh registration, or a metadata document fetched again).
    func saveOAuthClient(_ client: OAuthClientRecord) throws
    /// Removes a client and revokes every grant it holds, also when only grants are left (a cached
    /// metadata document pruned); false when there was neither.
    func removeOAuthClient(id: String) throws -> Bool
    /// Every registered client and cached metadata document, oldest first.
    func oauthClients() throws -> [OAuthClientRecord]

    // MARK: pending authorizations

    func savePendingAuthorization(_ pending: PendingAuthorization) throws
    /// A pending authorization still within its lifetime, by its id (consent page round trip).
    func pendingAuthorization(id: String, now: Double) throws -> PendingAuthorization?
    /// Takes (deletes and returns) the pending authorization Entra's callback names by its
    /// upstream state, exactly once across every process; nil when unknown, taken or expired.
    func takePendingAuthorization(upstreamState: String, now: Double) throws -> PendingAuthorization?

    // MARK: authorization codes

    func saveAuthorizationCode(_ code: StoredAuthorizationCode) throws
    /// Marks the code used and returns it, exactly once; a second redemption returns the code
    /// with `alreadyUsed` set (its grant must then be revoked). nil when unknown.
    func redeemAuthorizationCode(sha256: String, now: Double) throws -> CodeRedemption?

    // MARK: grants and refresh tokens

    func saveGrant(_ grant: OAuthGrant) throws
    func grant(id: String) throws -> OAuthGrant?
    /// Replaces the sealed Entra refresh token of a live grant (Entra rotates it on use).
    func updateGrantUpstreamToken(id: String, sealedRefreshToken: [UInt8], now: Double) throws
    /// Revokes a grant and every refresh token of it; false when it was unknown or already revoked.
    func revokeGrant(id: String, now: Double) throws -> Bool
    /// Revokes every live grant of a user (tenant + object id) in this instance; how many.
    func revokeGrants(tenant: String, user: String, now: Double) throws -> Int
    /// Live grants, optionally of one user, newest first.
    func grants(tenant: String?, user: String?) throws -> [OAuthGrant]

    /// Throws unless the token's grant is live: one issued while another process revokes the
    /// grant never outlives it.
    func saveRefreshToken(_ token: StoredRefreshToken) throws
    func refreshToken(sha256: String) throws -> StoredRefreshToken?
    /// Marks a current refresh token rotated at `now`, only if it still is current (compare and
    /// set); false when another request rotated it first.
    func markRefreshTokenRotated(sha256: String, now: Double) throws -> Bool

    /// Deletes what has expired (pending authorizations, codes, refresh tokens, cached documents),
    /// and grants that nothing left can use.
    func pruneOAuth(now: Double) throws
}

/// Where a client's registration came from.
public enum OAuthClientSource: String, Sendable {
    /// RFC 7591 dynamic registration.
    case registered
    /// A Client ID Metadata Document fetched from the client id URL (cached until `expiresAt`).
    case metadataDocument = "metadata_document"
}

public struct OAuthClientRecord: Equatable, Sendable {
    public var clientId: String
    /// Lower-case hex SHA-256 of the client secret; nil for public clients (auth method `none`).
    public var secretSHA256: String?
    /// The validated client metadata as JSON text (client_name, redirect_uris, grant_types,
    /// token_endpoint_auth_method, ...), as the registration endpoint answered it.
    public var metadataJSON: String
    public var source: OAuthClientSource
    public var createdAt: Double
    /// Metadata documents only: when the cached copy must be fetched again.
    public var expiresAt: Double?

    public init(clientId: String, secretSHA256: String?, metadataJSON: String, source: OAuthClientSource,
                createdAt: Double, expiresAt: Double?) {
        self.clientId = clientId
        self.secretSHA256 = secretSHA256
        self.metadataJSON = metadataJSON
        self.source = source
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// An authorization request that passed every check, waiting for consent and Entra.
public struct PendingAuthorization: Equatable, Sendable {
    /// 256 random bits (hex): names the request on the consent page.
    public var id: String
    public var clientId: String
    public var redirectURI: String
    /// The client's `state`, returned to it unchanged.
    public var clientState: String
    public var codeChallenge: String
    public var scopes: [String]
    public var resource: String?
    /// Set only once the user has consented: the `state` sent to Entra.
    public var upstreamState: String?
    /// Our own PKCE verifier and OIDC nonce for the Entra leg (set with `upstreamState`).
    public var upstreamVerifier: String?
    public var nonce: String?
    public var createdAt: Double
    public var expiresAt: Double

    public init(id: String, clientId: String, redirectURI: String, clientState: String, codeChallenge: String,
                scopes: [String], resource: String?, upstreamState: String? = nil, upstreamVerifier: String? = nil,
                nonce: String? = nil, createdAt: Double, expiresAt: Double) {
        self.id = id
        self.clientId = clientId
        self.redirectURI = redirectURI
        self.clientState = clientState
        self.codeChallenge = codeChallenge
        self.scopes = scopes
        self.resource = resource
        self.upstreamState = upstreamState
        self.upstreamVerifier = upstreamVerifier
        self.nonce = nonce
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// One of our authorization codes: single use, short-lived, bound to everything the token
/// request must repeat.
public struct StoredAuthorizationCode: Equatable, Sendable {
    /// Lower-case hex SHA-256 of the code.
    public var sha256: String
    public var grantId: String
    public var clientId: String
    public var redirectURI: String
    public var codeChallenge: String
    public var scopes: [String]
    public var resource: String?
    /// Entra's access token for our API, sealed, handed out at the token endpoint.
    public var sealedAccessToken: [UInt8]
    public var accessTokenExpiresAt: Double
    public var expiresAt: Double

    public init(sha256: String, grantId: String, clientId: String, redirectURI: String, codeChallenge: String,
                scopes: [String], resource: String?, sealedAccessToken: [UInt8], accessTokenExpiresAt: Double,
                expiresAt: Double) {
        self.sha256 = sha256
        self.grantId = grantId
        self.clientId = clientId
        self.redirectURI = redirectURI
        self.codeChallenge = codeChallenge
        self.scopes = scopes
        self.resource = resource
        self.sealedAccessToken = sealedAccessToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.expiresAt = expiresAt
    }
}

public struct CodeRedemption: Equatable, Sendable {
    public var code: StoredAuthorizationCode
    /// The code had been redeemed before: a replay.
    public var alreadyUsed: Bool

    public init(code: StoredAuthorizationCode, alreadyUsed: Bool) {
        self.code = code
        self.alreadyUsed = alreadyUsed
    }
}

/// What a user allowed a client: the user, the scopes, and Entra's refresh token (sealed).
public struct OAuthGrant: Equatable, Sendable {
    public var id: String
    public var clientId: String
    public var tenant: String
    public var user: String
    public var scopes: [String]
    public var resource: String?
    public var sealedRefreshToken: [UInt8]
    public var createdAt: Double
    public var updatedAt: Double
    public var revokedAt: Double?

    public init(id: String, clientId: String, tenant: String, user: String, scopes: [String], resource: String?,
                sealedRefreshToken: [UInt8], createdAt: Double, updatedAt: Double, revokedAt: Double? = nil) {
        self.id = id
        self.clientId = clientId
        self.tenant = tenant.lowercased()
        self.user = user.lowercased()
        self.scopes = scopes
        self.resource = resource
        self.sealedRefreshToken = sealedRefreshToken
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.revokedAt = revokedAt
    }
}

/// One of our refresh tokens. Rotated on every use; a rotated one is kept (with
/// `rotatedAt`) so a late concurrent use can be told from a replay.
public struct StoredRefreshToken: Equatable, Sendable {
    /// Lower-case hex SHA-256 of the token.
    public var sha256: String
    public var grantId: String
    public var createdAt: Double
    public var expiresAt: Double
    public var rotatedAt: Double?

    public init(sha256: String, grantId: String, createdAt: Double, expiresAt: Double, rotatedAt: Double? = nil) {
        self.sha256 = sha256
        self.grantId = grantId
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.rotatedAt = rotatedAt
    }
}
