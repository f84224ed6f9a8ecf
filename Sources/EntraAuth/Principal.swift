import MCPJSON

/// Who a verified token speaks for. Authorisation keys on (tenantId, objectId);
/// displayName and userPrincipalName are mutable and are for logs only.
public struct Principal: Equatable, Sendable {
    public let tenantId: String
    public let objectId: String
    public let subject: String
    public let issuer: String
    public let clientAppId: String?
    public let scopes: [String]
    public let roles: [String]
    public let groups: [String]?
    public let tokenVersion: String?
    public let isAppOnly: Bool
    public let expiresAt: Int64
    public let displayName: String?
    public let userPrincipalName: String?
    /// `xms_cc`: client capabilities; "cp1" means the client can answer claims challenges.
    public let clientCapabilities: [String]
    /// The user is in more groups than the token can list (Entra's group overage: `hasgroups`,
    /// or `_claim_names.groups` pointing at Graph); `groups` is then incomplete.
    public let groupsOverflowed: Bool
    /// Which configured identity provider vouched for this principal: "entra", or the
    /// provider's qualifier ("google", "github", "apikey", "oidc:<name>"). For every provider
    /// but Entra, `objectId` is already qualified with it, so ids from two providers never meet.
    public let provider: String

    public static let entraProvider = "entra"

    public var isEntra: Bool { provider == Self.entraProvider }

    /// A user id another provider qualified: `google:…`, `github:…`, `apikey:…` or
    /// `oidc:<name>:…`, printable ASCII without spaces (what operators type into mappings and blocks).
    public static func isQualifiedUserID(_ id: String) -> Bool {
        guard id.utf8.count <= 512, id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        let parts = id.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        switch parts.first {
        case "google", "github", "apikey": return parts.count >= 2 && !id.dropFirst(parts[0].count + 1).isEmpty
        case "oidc": return parts.count == 3 && !parts[1].isEmpty && !parts[2].isEmpty
        default: return false
        }
    }

    /// A user id as stored and compared: Entra's GUIDs case-insensitively (lower-cased), another
    /// provider's qualified id (it has a ":", a GUID never does) exactly, since OpenID subjects are
    /// case-sensitive and `oidc:x:Ada` and `oidc:x:ada` may be two people.
    /// Looks for the colon in the bytes: Foundation's substring search costs far more per request.
    public static func canonicalUserID(_ id: String) -> String { id.utf8.contains(UInt8(ascii: ":")) ? id : id.lowercased() }

    /// App-only: `idtyp=app`, or no `scp` at all (client-credentials tokens carry only `roles`).
    static func isAppOnly(_ claims: JSONObject) -> Bool {
        claims["idtyp"]?.stringValue == "app" || claims["scp"] == nil
    }

    /// Entra's mapping: `tid`, `oid` and the rest, as `init(claims:)` reads them.
    public static func entra(_ claims: JSONObject) throws -> Principal { try Principal(claims: claims) }

    init(claims: JSONObject) throws {
        func required(_ claim: TokenVerificationError.RequiredClaim) throws -> String {
            guard let v = claims[claim.rawValue] else { throw TokenVerificationError.missingClaim(claim) }
            guard let s = v.stringValue, !s.isEmpty else { throw TokenVerificationError.malformedToken(.invalidClaim) }
            return s
        }
        func optional(_ key: String) throws -> String? {
            guard let v = claims[key] else { return nil }
            guard let s = v.stringValue else { throw TokenVerificationError.malformedToken(.invalidClaim) }
            return s
        }
        func stringArray(_ key: String) throws -> [String]? {
            guard let v = claims[key] else { return nil }
            guard let a = v.arrayValue else { throw TokenVerificationError.malformedToken(.invalidClaim) }
            return try a.map {
                guard let s = $0.stringValue else { throw TokenVerificationError.malformedToken(.invalidClaim) }
                return s
            }
        }
        tenantId = try required(.tid)
        objectId = try required(.oid)
        subject = try required(.sub)
        issuer = try required(.iss)
        clientAppId = try optional("azp") ?? optional("appid")
        scopes = try optional("scp").map { $0.split(separator: " ").map(String.init) } ?? []
        roles = try stringArray("roles") ?? []
        groups = try stringArray("groups")
        tokenVersion = try optional("ver")
        isAppOnly = Self.isAppOnly(claims)
        guard let expValue = claims["exp"] else { throw TokenVerificationError.missingClaim(.exp) }
        guard let exp = LifetimeCheck.seconds(expValue) else { throw TokenVerificationError.malformedToken(.invalidClaim) }
        expiresAt = exp
        displayName = try optional("name")
        userPrincipalName = try optional("preferred_username") ?? optional("upn")
        // A list in Entra tokens; a lone string is read as a one-element list.
        clientCapabilities = claims["xms_cc"]?.stringValue.map { [$0] } ?? claims["xms_cc"]?.arrayValue?.compactMap(\.stringValue) ?? []
        groupsOverflowed = claims["hasgroups"]?.boolValue == true || claims["_claim_names"]?["groups"] != nil
        provider = Self.entraProvider
    }

    public init(tenantId: String, objectId: String, subject: String, issuer: String, clientAppId: String?,
                scopes: [String], roles: [String], groups: [String]?, tokenVersion: String?, isAppOnly: Bool,
                expiresAt: Int64, displayName: String?, userPrincipalName: String?, clientCapabilities: [String] = [],
                groupsOverflowed: Bool = false, provider: String = Principal.entraProvider) {
        self.tenantId = tenantId; self.objectId = objectId; self.subject = subject; self.issuer = issuer
        self.clientAppId = clientAppId; self.scopes = scopes; self.roles = roles; self.groups = groups
        self.tokenVersion = tokenVersion; self.isAppOnly = isAppOnly; self.expiresAt = expiresAt
        self.displayName = displayName; self.userPrincipalName = userPrincipalName
        self.clientCapabilities = clientCapabilities
        self.groupsOverflowed = groupsOverflowed
        self.provider = provider
    }

    /// For a whoami tool: identity, grants and expiry, never the token itself.
    public var json: JSONValue {
        var o = JSONObject()
        o["tenantId"] = .string(tenantId)
        o["objectId"] = .string(objectId)
        o["subject"] = .string(subject)
        o["issuer"] = .string(issuer)
        o["clientAppId"] = JSONValue(clientAppId)
        o["kind"] = .string(isAppOnly ? "app" : "delegated")
        o["scopes"] = JSONValue(scopes)
        o["roles"] = JSONValue(roles)
        if let groups { o["groups"] = JSONValue(groups) }
        o["tokenVersion"] = JSONValue(tokenVersion)
        o["expiresAt"] = .integer(Int(expiresAt))
        o["displayName"] = JSONValue(displayName)
        o["userPrincipalName"] = JSONValue(userPrincipalName)
        o["provider"] = .string(provider)
        return .object(o)
    }
}
