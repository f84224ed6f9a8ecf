/// What an opaque-token provider (GitHub, Google tokeninfo) said about a token, shared by every
/// process so one answer serves the site until it lapses. Keyed by the token's SHA-256 digest
/// and the provider: the token itself is never kept.
public protocol IntrospectionCache: AnyObject, Sendable {
    /// The cached verdict (the provider's JSON summary of the principal), if it has not lapsed.
    func introspection(provider: String, tokenDigest: String, now: Int64) throws -> String?
    /// Keeps `summary` until `expires`; lapsed entries are dropped on the way.
    func saveIntrospection(provider: String, tokenDigest: String, summary: String, expires: Int64, now: Int64) throws
}
