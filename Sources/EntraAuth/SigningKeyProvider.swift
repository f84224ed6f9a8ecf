/// Where the verifier gets the key a token names. Implementations are shared by
/// all worker threads and must be thread-safe.
public protocol SigningKeyProvider: AnyObject {
    /// The key for `kid`, usable with `algorithm`. May block for a bounded time
    /// (a rate-limited refetch) when the kid is unknown.
    func signingKey(kid: String, algorithm: JWSAlgorithm) -> Result<VerificationKey, TokenVerificationError>
    /// When the keys in use were fetched (Unix seconds); nil when none are cached or they are fixed.
    var keysFetchedAt: Int64? { get }
    /// True when keys are at hand, after at most one fetch that respects the provider's back-off.
    func ensureKeys() -> Bool
}

extension SigningKeyProvider {
    public var keysFetchedAt: Int64? { nil }
}

/// A fixed key set: development mode (the local dev key) and tests. Never fetches.
public final class StaticKeyProvider: SigningKeyProvider, @unchecked Sendable {
    private let keySet: KeySet

    public init(keySet: KeySet) { self.keySet = keySet }
    public convenience init(keys: [VerificationKey]) { self.init(keySet: KeySet(keys: keys)) }

    public func signingKey(kid: String, algorithm: JWSAlgorithm) -> Result<VerificationKey, TokenVerificationError> {
        if keySet.isEmpty && keySet.refused.isEmpty { return .failure(.signingKeysUnavailable) }
        return keySet.key(for: kid, algorithm: algorithm) ?? .failure(.unknownSigningKey)
    }

    public func ensureKeys() -> Bool { !keySet.isEmpty }
}
