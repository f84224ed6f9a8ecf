import GatewayCrypto
import MCPJSON

/// Verifies bearer tokens: strict JWS parsing, a key from the provider (never
/// from the token), the signature, then the claims policy. Successful results
/// are cached by token digest until expiry. One instance serves all threads.
public final class TokenVerifier: BearerTokenProvider, @unchecked Sendable {
    public typealias Clock = () -> Int64
    /// Turns verified claims into the Principal (Entra's `tid`/`oid`, or a provider's mapping).
    public typealias PrincipalMapping = (JSONObject) throws -> Principal

    public let policy: ClaimsPolicy
    public let allowedAlgorithms: Set<JWSAlgorithm>
    public let maxTokenBytes: Int
    private let keys: SigningKeyProvider
    private let clock: Clock
    private let cache: TokenCache
    private let principal: PrincipalMapping

    public init(policy: ClaimsPolicy, keys: SigningKeyProvider, allowedAlgorithms: Set<JWSAlgorithm> = [.rs256],
                maxTokenBytes: Int = CompactJWS.defaultMaxBytes, cacheCapacity: Int = 10_000,
                clock: @escaping Clock = systemClockSeconds, principal: @escaping PrincipalMapping = Principal.entra) {
        self.principal = principal
        self.policy = policy
        self.keys = keys
        self.allowedAlgorithms = allowedAlgorithms
        self.maxTokenBytes = maxTokenBytes
        self.clock = clock
        self.cache = TokenCache(capacity: cacheCapacity)
    }

    /// The Principal the token speaks for, or the reason it is refused.
    public func verify(_ token: String) throws(TokenVerificationError) -> Principal {
        var hit = false
        return try verify(token, cacheHit: &hit)
    }

    /// `verify`, telling whether the verdict came from the cache (for the hit-ratio metric).
    public func verify(_ token: String, cacheHit: inout Bool) throws(TokenVerificationError) -> Principal {
        var token = token
        var hit = false
        defer { cacheHit = hit }
        let now = clock()
        let result: Result<Principal, TokenVerificationError> = token.withUTF8 { utf8 in
            guard utf8.count <= maxTokenBytes else { return .failure(.tokenTooLarge) }
            let digest = SHA256Digest(UnsafeRawBufferPointer(utf8))
            if let cached = cache.lookup(digest, now: now) { hit = true; return .success(cached) }
            return Result { try verifyUncached(Array(utf8), now: now) }
                .mapError { $0 as? TokenVerificationError ?? .malformedToken(.invalidClaim) }
                .map { principal in
                    cache.insert(digest, principal: principal, validUntil: principal.expiresAt + policy.clockSkewSeconds)
                    return principal
                }
        }
        return try result.get()
    }

    /// The same as `verify`, as a value: diagnostics are data, not control flow.
    public func check(_ token: String) -> Result<Principal, TokenVerificationError> {
        do { return .success(try verify(token)) } catch { return .failure(error) }
    }

    public func check(_ token: String, cacheHit: inout Bool) -> Result<Principal, TokenVerificationError> {
        do { return .success(try verify(token, cacheHit: &cacheHit)) } catch { return .failure(error) }
    }

    /// Where the signing keys come from (for readiness and status).
    public var keyProvider: SigningKeyProvider { keys }

    /// Verified tokens currently cached in this process.
    public var cachedTokens: Int { cache.count }

    private func verifyUncached(_ bytes: [UInt8], now: Int64) throws -> Principal {
        let jws = try CompactJWS(bytes: bytes, maxBytes: maxTokenBytes, allowedAlgorithms: allowedAlgorithms)
        let key = try keys.signingKey(kid: jws.header.keyID, algorithm: jws.header.algorithm).get()
        guard SignatureVerifier.verify(signature: jws.signature, message: jws.signingInput, key: key) else {
            throw TokenVerificationError.badSignature
        }
        let claims = try jws.claims()
        if let failure = policy.evaluate(TokenClaims(claims: claims, signingKeyIssuer: key.issuer, now: now)) {
            throw failure
        }
        return try principal(claims)
    }
}
