import EntraAuth
import GatewayCrypto
import MCPJSON

/// Entra-shaped test material: tenants, audiences, signing keys, claims and signed tokens,
/// and the claims policy that accepts them.
package enum Fixture {
    package static let tenantA = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    package static let tenantB = "fa15d692-e9c7-4460-a743-29f29522229b"
    package static let tenantC = "0d8a3f1c-1111-4a4a-9b9b-0123456789ab"
    package static let audience = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
    package static let appIDURI = "api://6e74172b-be56-4843-9ff4-e66a39bb12e3"
    package static let oid = "00000000-0000-0000-66f3-3332eca7ea81"
    package static let authority = "https://login.microsoftonline.com"

    /// Key generation costs tens of milliseconds; share keys across tests.
    package static let key = try! DevSigningKey.generate()
    package static let otherKey = try! DevSigningKey.generate()

    package static func v2Issuer(_ tid: String, authority: String = authority) -> String { "\(authority)/\(tid)/v2.0" }
    package static func v1Issuer(_ tid: String) -> String { "https://sts.windows.net/\(tid)/" }

    package static func claims(tid: String = tenantA, iss: String? = nil, aud: JSONValue = .string(audience), now: Int64,
                               ttl: Int64 = 3600, scp: String? = "access_as_user") -> JSONObject {
        var c = JSONObject()
        c["aud"] = aud
        c["iss"] = .string(iss ?? v2Issuer(tid))
        c["iat"] = .integer(Int(now))
        c["nbf"] = .integer(Int(now))
        c["exp"] = .integer(Int(now + ttl))
        c["azp"] = "11111111-2222-3333-4444-555555555555"
        c["name"] = "Abe Lincoln"
        c["oid"] = .string(oid)
        c["preferred_username"] = "abe@contoso.com"
        if let scp { c["scp"] = .string(scp) }
        c["sub"] = "hpZ9b-S4ig5Zkvvjfj0_UwXd8Lq1Xf0HcFeeVb6Tkq0"
        c["tid"] = .string(tid)
        c["ver"] = "2.0"
        return c
    }

    package static func header(kid: String = key.keyID, alg: String = "RS256", extra: JSONObject = JSONObject()) -> JSONObject {
        var h = JSONObject(["typ": "JWT", "alg": .string(alg), "kid": .string(kid)])
        for (k, v) in extra { h[k] = v }
        return h
    }

    /// `header` and `claims` signed with RS256 by `signer`, whatever they say.
    package static func token(header: JSONObject = header(), claims: JSONObject, signedBy signer: DevSigningKey = key) -> String {
        try! DevTokenMinter(key: signer).sign(header: header, claims: claims)
    }

    package static func policy(tenants: [String] = [tenantA, tenantB], acceptAnyTenant: Bool = false, v1: Bool = true,
                               acceptDelegated: Bool = true, acceptAppOnly: Bool = false, authority: String = authority) -> ClaimsPolicy {
        var templates = ["\(authority)/{tenantid}/v2.0"]
        if v1 { templates.append("https://sts.windows.net/{tenantid}/") }
        return ClaimsPolicy.entra(issuerTemplates: templates, allowedTenants: tenants, acceptAnyTenant: acceptAnyTenant,
                                  audiences: [audience, appIDURI], acceptDelegated: acceptDelegated,
                                  acceptAppOnly: acceptAppOnly, clockSkewSeconds: 120)
    }

    package static func b64(_ s: String) -> String { Base64.encodeURL(Array(s.utf8)) }

    /// HMAC-SHA256 (RFC 2104), to forge HS256 tokens that must be refused.
    package static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        HMACSHA256.authenticate(message, key: key)
    }
}
