import EntraAuth
import FoundationEssentials
import GatewayCrypto
import GatewayStore
import GatewaySupport
import MCPJSON

/// Service-to-service API keys: `mcpk_<id>_<secret>`, the id 16 hex digits (the public part,
/// named in listings and the audit trail), the secret 256 random bits in base64url. The
/// store keeps only HMAC-SHA256 of the whole key under the instance's API key secret
/// (`<state_dir>/api-keys.key`, 0600), so a copy of the table opens nothing.
public struct APIKeyIssuer: Sendable {
    public static let prefix = "mcpk_"
    public static let secretFileName = "api-keys.key"
    static let idLength = 16, secretLength = 43

    let secret: [UInt8]

    /// The instance's API key secret, created once by whichever process needs it first.
    public init(stateDirectory: String) throws {
        let path = stateDirectory + "/" + Self.secretFileName
        try PrivateFiles.createSecretIfAbsent(path) {
            guard let bytes = SecureRandom.bytes(32) else { throw ServerError("no randomness for the API key secret") }
            return bytes
        }
        guard let key = try PrivateFiles.readSecret(path, what: "API key secret", maxBytes: 64), key.count == 32 else {
            throw ServerError("the API key secret \(path) must hold 32 bytes")
        }
        secret = key
    }

    /// A new key and the record to store; the key itself is shown once and kept nowhere.
    public func create(name: String, tenant: String, roles: [String], expires: Int64?, now: Int64) throws -> (key: String, record: APIKeyRecord) {
        // The store keeps roles space-separated: "MCP Admin" would come back as "MCP" and "Admin".
        if let bad = roles.first(where: { $0.isEmpty || $0.contains(where: \.isWhitespace) }) {
            throw ServerError("role '\(bad)' must be one word: role names hold no spaces")
        }
        guard let idBytes = SecureRandom.bytes(8), let secretBytes = SecureRandom.bytes(32) else {
            throw ServerError("no randomness for a new API key")
        }
        let id = Hex.encode(idBytes)
        let key = Self.prefix + id + "_" + Base64.encodeURL(secretBytes)
        return (key, APIKeyRecord(id: id, name: name, tenant: tenant, roles: roles, hmac: mac(key), created: now, expires: expires))
    }

    func mac(_ key: String) -> String { Hex.encode(HMACSHA256.authenticate(Array(key.utf8), key: secret)) }

    /// The id of a key of our shape, or nil: prefix, 16 lower-case hex digits, "_", 43 base64url characters.
    static func id(of key: String) -> String? {
        let bytes = Array(key.utf8)
        let p = prefix.utf8.count
        guard bytes.count == p + idLength + 1 + secretLength, key.hasPrefix(prefix), bytes[p + idLength] == UInt8(ascii: "_") else { return nil }
        let id = bytes[p..<(p + idLength)], secret = bytes[(p + idLength + 1)...]
        guard id.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }),
              Base64.decodeURL(secret)?.count == 32 else { return nil }
        return String(decoding: id, as: UTF8.self)
    }
}

/// The `api_key` provider: each use looks the key up (so a revocation holds at once across
/// processes), compares keyed hashes in constant time, and yields an app-only principal
/// `apikey:<id>` of the key's tenant and roles. Never a user, so never On-Behalf-Of.
public final class APIKeyProvider: BearerTokenProvider, @unchecked Sendable {
    public static let qualifier = "apikey"
    let issuer: APIKeyIssuer
    let store: APIKeyStore
    let allowedTenants: Set<String>
    let acceptAnyTenant: Bool
    let clock: () -> Int64

    public init(issuer: APIKeyIssuer, store: APIKeyStore, allowedTenants: [String], acceptAnyTenant: Bool,
                clock: @escaping () -> Int64 = systemClockSeconds) {
        self.issuer = issuer
        self.store = store
        self.allowedTenants = Set(allowedTenants.map { $0.lowercased() })
        self.acceptAnyTenant = acceptAnyTenant
        self.clock = clock
    }

    public func check(_ token: String, cacheHit: inout Bool) -> Result<Principal, TokenVerificationError> {
        cacheHit = false
        guard let id = APIKeyIssuer.id(of: token) else { return .failure(.invalidAPIKey) }
        let found: APIKeyRecord?
        do { found = try store.apiKey(id: id) } catch { return .failure(.providerUnavailable) }
        // Unknown id and wrong secret answer alike, so ids cannot be probed.
        let expected = found?.hmac ?? String(repeating: "0", count: 64)
        guard ConstantTime.equal(Array(issuer.mac(token).utf8), Array(expected.utf8)), let record = found else {
            return .failure(.invalidAPIKey)
        }
        let now = clock()
        if record.revoked != nil { return .failure(.revokedAPIKey) }
        if let expires = record.expires, now >= expires { return .failure(.expired) }
        guard acceptAnyTenant || allowedTenants.contains(record.tenant) else { return .failure(.tenantNotAllowed) }
        let user = "\(Self.qualifier):\(record.id)"
        return .success(Principal(tenantId: record.tenant, objectId: user, subject: record.id, issuer: "mcp-fcgi api key",
                                  clientAppId: user, scopes: [], roles: record.roles, groups: nil, tokenVersion: nil,
                                  isAppOnly: true, expiresAt: record.expires ?? now + 3600, displayName: record.name,
                                  userPrincipalName: nil, provider: Self.qualifier))
    }
}
