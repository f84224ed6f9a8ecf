import MCPJSON

/// Mints RS256 access tokens with the dev key, shaped like Entra v2 tokens, for
/// development and tests. The issuer is `https://dev.mcp-fcgi.invalid/{tid}/v2.0`
/// (`.invalid` can never resolve, so these tokens cannot pass for real ones).
public struct DevTokenMinter {
    public static let issuerAuthority = "https://dev.mcp-fcgi.invalid"
    public static var issuerTemplate: String { issuerAuthority + "/{tenantid}/v2.0" }

    public let key: DevSigningKey
    public let clock: () -> Int64

    public init(key: DevSigningKey, clock: @escaping () -> Int64 = systemClockSeconds) {
        self.key = key
        self.clock = clock
    }

    /// A token for `audience` speaking for (tenantId, objectId). With no scopes it
    /// is an app-only token (`idtyp=app`, `roles` only), as client credentials give.
    public func mint(tenantId: String, objectId: String, audience: String, scopes: [String] = [],
                     roles: [String] = [], clientAppId: String = "00000000-0000-0000-0000-00000000dev0",
                     name: String? = nil, ttl: Int64 = 3600, extraClaims: JSONObject = JSONObject()) throws -> String {
        let now = clock()
        var claims = JSONObject()
        claims["aud"] = .string(audience)
        claims["iss"] = .string(Self.issuerAuthority + "/" + tenantId + "/v2.0")
        claims["iat"] = .integer(Int(now))
        claims["nbf"] = .integer(Int(now))
        claims["exp"] = .integer(Int(now + ttl))
        claims["azp"] = .string(clientAppId)
        if let name { claims["name"] = .string(name) }
        claims["oid"] = .string(objectId)
        if !roles.isEmpty { claims["roles"] = JSONValue(roles) }
        if scopes.isEmpty { claims["idtyp"] = "app" } else { claims["scp"] = .string(scopes.joined(separator: " ")) }
        claims["sub"] = .string(objectId)
        claims["tid"] = .string(tenantId)
        claims["ver"] = "2.0"
        for (k, v) in extraClaims { claims[k] = v }
        return try sign(header: JSONObject(["typ": "JWT", "alg": "RS256", "kid": .string(key.keyID)]), claims: claims)
    }

    /// Signs an arbitrary header and payload with the dev key (RS256), e.g. to
    /// build deliberately odd tokens in tests.
    public func sign(header: JSONObject, claims: JSONObject) throws -> String {
        let input = Base64.encodeURL(JSONWriter.serialize(.object(header))) + "." + Base64.encodeURL(JSONWriter.serialize(.object(claims)))
        return input + "." + Base64.encodeURL(try key.signRS256(Array(input.utf8)))
    }
}
