import MCPJSON

/// One generic OpenID Connect issuer (Google ID tokens, Auth0, Okta custom servers, Keycloak,
/// Entra External ID): keys from its discovery document, claims checked and mapped as below.
public struct OIDCConfiguration: Sendable {
    /// Short name, part of every user id: `oidc:<name>:<sub>`.
    public var name: String
    /// Compared exactly with `iss` and the discovery document's `issuer` (Auth0's ends in "/").
    public var issuer: String
    public var audiences: [String]
    /// When set, `azp` must be present and equal it (Google: our client id).
    public var authorizedParty: String?
    /// RS256, PS256 and ES256 only; never none or HS*.
    public var allowedAlgorithms: Set<JWSAlgorithm> = [.rs256]
    public var clockSkewSeconds: Int64 = 120
    public var claims = OIDCClaimsMapping()
    public var jwksURI: String?
    public var stateDirectory: String
    public var jwksRefreshIntervalSeconds: Int64 = 12 * 3600
    public var unknownKidRefetchIntervalSeconds: Int64 = 300
    public var fetchFailureRetryIntervalSeconds: Int64 = 30
    public var http = HTTPFetchOptions()
    public var tokenCacheCapacity = 2_000

    public static let permittedAlgorithms: Set<JWSAlgorithm> = [.rs256, .ps256, .es256]

    public init(name: String, issuer: String, audiences: [String], stateDirectory: String) {
        self.name = name
        self.issuer = issuer
        self.audiences = audiences
        self.stateDirectory = stateDirectory
    }

    public var qualifier: String { "oidc:\(name)" }

    public func validate() throws {
        guard !name.isEmpty, name.utf8.allSatisfy({ ASCIIName.isNameByte($0) }) else {
            throw AuthConfigurationError("provider name must be letters, digits, '-' or '_'")
        }
        guard http.permits(issuer) else { throw AuthConfigurationError("issuer must be an https URL") }
        guard !audiences.isEmpty else { throw AuthConfigurationError("at least one audience is required") }
        guard !allowedAlgorithms.isEmpty, allowedAlgorithms.isSubset(of: Self.permittedAlgorithms) else {
            throw AuthConfigurationError("algorithms must be among RS256, PS256 and ES256")
        }
        guard (0...300).contains(clockSkewSeconds) else { throw AuthConfigurationError("clock skew must be 0-300 seconds") }
    }
}

enum ASCIIName {
    static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F
    }
}

/// How a provider's claims become a Principal: who (subject), what they may do (roles from a
/// claim path), and which tenant they belong to (a claim, a fixed tenant, or the domain of an
/// email the provider verified).
public struct OIDCClaimsMapping: Sendable {
    public var subjectClaim = "sub"
    /// `permissions` (Auth0 RBAC), `realm_access.roles` (Keycloak), or a namespaced claim
    /// such as `https://example.com/roles`; nil: no roles.
    public var rolesClaim: String?
    /// Roles every user of this provider has, besides those of `rolesClaim` (Google ID tokens carry none).
    public var roles: [String] = []
    /// A claim holding the tenant id (a GUID).
    public var tenantClaim: String?
    /// Every user of this provider belongs to this tenant.
    public var fixedTenant: String?
    /// Lower-cased email domain → lower-cased tenant id; used only for verified emails.
    public var emailDomains: [String: String] = [:]
    /// Tenant ids accepted (lower-cased); ignored with `acceptAnyTenant`.
    public var allowedTenants: Set<String> = []
    public var acceptAnyTenant = false

    public init() {}

    /// A claim by path: the whole path as one claim name first (namespaced claims are URLs
    /// full of dots), then dot-separated steps through nested objects.
    public static func value(_ path: String, in claims: JSONObject) -> JSONValue? {
        if let whole = claims[path] { return whole }
        var current: JSONValue = .object(claims)
        for step in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let next = current[String(step)] else { return nil }
            current = next
        }
        return current
    }

    /// The verified email, or nil; `email_verified` must be the JSON `true`.
    static func verifiedEmail(_ claims: JSONObject) -> String? {
        guard claims["email_verified"]?.boolValue == true, let email = claims["email"]?.stringValue else { return nil }
        return email
    }

    public func tenant(_ claims: JSONObject) throws(TokenVerificationError) -> String {
        let tenant: String
        if let fixedTenant {
            tenant = fixedTenant
        } else if let tenantClaim {
            // The configured claim alone places the user: without it, an email domain must not stand in.
            guard let value = Self.value(tenantClaim, in: claims) else { throw .noTenantForUser }
            guard let s = value.stringValue, IssuerTenantCheck.isGUID(s) else { throw .malformedToken(.invalidClaim) }
            tenant = s.lowercased()
        } else {
            guard let email = claims["email"]?.stringValue, let at = email.lastIndex(of: "@") else { throw .noTenantForUser }
            let domain = email[email.index(after: at)...].lowercased()
            guard let mapped = emailDomains[domain] else { throw .noTenantForUser }
            // A mapped domain believed only from a verified email: anyone can type any address.
            guard Self.verifiedEmail(claims) != nil else { throw .emailNotVerified }
            tenant = mapped
        }
        guard acceptAnyTenant || allowedTenants.contains(tenant) else { throw .tenantNotAllowed }
        return tenant
    }

    public func roles(_ claims: JSONObject) throws(TokenVerificationError) -> [String] {
        var roles = self.roles
        guard let rolesClaim, let value = Self.value(rolesClaim, in: claims) else { return roles }
        if let one = value.stringValue { return roles + one.split(separator: " ").map(String.init) }
        guard let list = value.arrayValue else { throw .malformedToken(.invalidClaim) }
        for item in list {
            guard let s = item.stringValue else { throw .malformedToken(.invalidClaim) }
            roles.append(s)
        }
        return roles
    }

    /// The Principal for verified claims: `oidc:<name>:<sub>` as the user id, a delegated
    /// user with the provider's scopes, the roles and tenant the mapping finds.
    public func principal(_ claims: JSONObject, qualifier: String) throws(TokenVerificationError) -> Principal {
        guard let subValue = Self.value(subjectClaim, in: claims) else { throw .missingClaim(.sub) }
        guard let sub = subValue.stringValue, !sub.isEmpty else { throw .malformedToken(.invalidClaim) }
        guard let iss = claims["iss"]?.stringValue else { throw .missingClaim(.iss) }
        guard let expValue = claims["exp"], let exp = LifetimeCheck.seconds(expValue) else { throw .missingClaim(.exp) }
        // Okta writes scp as an array; the others write scope as one space-separated string.
        var scopes: [String] = []
        if let scope = claims["scope"]?.stringValue ?? claims["scp"]?.stringValue {
            scopes = scope.split(separator: " ").map(String.init)
        } else if let list = claims["scp"]?.arrayValue {
            scopes = list.compactMap(\.stringValue)
        }
        return Principal(tenantId: try tenant(claims), objectId: "\(qualifier):\(sub)", subject: sub, issuer: iss,
                         clientAppId: claims["azp"]?.stringValue, scopes: scopes, roles: try roles(claims), groups: nil,
                         tokenVersion: nil, isAppOnly: false, expiresAt: exp, displayName: claims["name"]?.stringValue,
                         userPrincipalName: Self.verifiedEmail(claims), provider: qualifier)
    }
}

/// `iss` must equal the configured issuer exactly: no templates, no trailing-slash leniency.
public struct ExactIssuerCheck: ClaimsCheck {
    public let issuer: String
    public init(issuer: String) { self.issuer = issuer }

    public func check(_ token: TokenClaims) -> TokenVerificationError? {
        guard let value = token.claims["iss"] else { return .missingClaim(.iss) }
        guard let iss = value.stringValue else { return .malformedToken(.invalidClaim) }
        return iss == issuer ? nil : .invalidIssuer
    }
}

/// `azp` must be present and name our client.
public struct AuthorizedPartyCheck: ClaimsCheck {
    public let client: String
    public init(client: String) { self.client = client }

    public func check(_ token: TokenClaims) -> TokenVerificationError? {
        guard let value = token.claims["azp"] else { return .invalidAuthorizedParty }
        guard let azp = value.stringValue else { return .malformedToken(.invalidClaim) }
        return azp == client ? nil : .invalidAuthorizedParty
    }
}

extension ClaimsPolicy {
    /// A generic issuer's rules: exact issuer, audience, authorized party when configured, lifetime.
    public static func oidc(_ c: OIDCConfiguration) -> ClaimsPolicy {
        var checks: [ClaimsCheck] = [ExactIssuerCheck(issuer: c.issuer), AudienceCheck(audiences: c.audiences)]
        if let azp = c.authorizedParty { checks.append(AuthorizedPartyCheck(client: azp)) }
        checks.append(LifetimeCheck(clockSkewSeconds: c.clockSkewSeconds))
        return ClaimsPolicy(checks: checks, clockSkewSeconds: c.clockSkewSeconds)
    }
}

extension TokenVerifier {
    /// A verifier for one generic issuer: its keys through the shared key cache (same refresh
    /// and unknown-kid rules as Entra's), its own policy and claims mapping.
    public convenience init(oidc c: OIDCConfiguration, http: HTTPFetching, keys: SigningKeyProvider? = nil,
                            clock: @escaping Clock = systemClockSeconds) throws {
        try c.validate()
        let provider: SigningKeyProvider
        if let keys {
            provider = keys
        } else {
            var s = JWKSKeyStore.Settings(authority: c.issuer, metadataTenant: "oidc", jwksURI: c.jwksURI, stateDirectory: c.stateDirectory)
            s.exactIssuer = c.issuer
            s.refreshIntervalSeconds = c.jwksRefreshIntervalSeconds
            s.unknownKidRefetchIntervalSeconds = c.unknownKidRefetchIntervalSeconds
            s.failureRetryIntervalSeconds = c.fetchFailureRetryIntervalSeconds
            s.http = c.http
            provider = try JWKSKeyStore(settings: s, http: http, clock: clock)
        }
        let mapping = c.claims, qualifier = c.qualifier
        self.init(policy: .oidc(c), keys: provider, allowedAlgorithms: c.allowedAlgorithms, cacheCapacity: c.tokenCacheCapacity,
                  clock: clock, principal: { claims in try mapping.principal(claims, qualifier: qualifier) })
    }
}
