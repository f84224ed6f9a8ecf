/// One service-to-service API key as the store keeps it: never the key, only a keyed hash
/// (HMAC-SHA256 with the instance's API key secret) beside its public lookup id.
public struct APIKeyRecord: Equatable, Sendable {
    /// The public part of the key (it follows the prefix); names the key in listings and the audit trail.
    public let id: String
    public let name: String
    /// Lower-cased tenant id the key's caller belongs to.
    public let tenant: String
    public let roles: [String]
    /// Hex HMAC-SHA256 of the whole key.
    public let hmac: String
    public let created: Int64
    public let expires: Int64?
    public let revoked: Int64?

    public init(id: String, name: String, tenant: String, roles: [String], hmac: String, created: Int64,
                expires: Int64?, revoked: Int64? = nil) {
        self.id = id; self.name = name; self.tenant = tenant.lowercased(); self.roles = roles
        self.hmac = hmac; self.created = created; self.expires = expires; self.revoked = revoked
    }
}

/// API keys: created, listed and revoked by `mcp-fcgi apikey`, looked up by id on each use.
public protocol APIKeyStore: AnyObject, Sendable {
    func addAPIKey(_ key: APIKeyRecord) throws
    func apiKey(id: String) throws -> APIKeyRecord?
    /// Every key, newest first, revoked ones included.
    func apiKeys() throws -> [APIKeyRecord]
    /// False when no unrevoked key has that id.
    func revokeAPIKey(id: String, at: Int64) throws -> Bool
}
