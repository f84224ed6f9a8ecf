import GatewayCrypto

/// A public key bound to one kid and one algorithm. Immutable after creation,
/// so one instance is shared by all threads.
public final class VerificationKey: @unchecked Sendable {
    public static let minimumRSABits = 2048

    public let keyID: String
    public let algorithm: JWSAlgorithm
    public let bits: Int
    /// Entra's per-key issuer (may contain `{tenantid}`), when the key set carries one.
    public let issuer: String?
    let publicKey: PublicKey

    /// Builds a key from a JWK. Throws `signingKeyTooSmall` for RSA keys under
    /// `minimumRSABits`, and `AuthConfigurationError` for anything unusable.
    public init(jwk: JWK, minimumRSABits: Int = VerificationKey.minimumRSABits) throws {
        guard let kid = jwk.keyID, !kid.isEmpty else { throw AuthConfigurationError("JWK has no kid") }
        guard let alg = jwk.boundAlgorithm else { throw AuthConfigurationError("JWK type or algorithm is not supported") }
        let key: PublicKey
        do {
            switch jwk.keyType {
            case "RSA":
                guard let n = jwk.n, let e = jwk.e else { throw AuthConfigurationError("RSA JWK lacks n or e") }
                key = try PublicKey(rsaModulus: n, exponent: e, minimumBits: minimumRSABits)
            case "EC":
                guard jwk.curve == "P-256", let x = jwk.x, let y = jwk.y, x.count == 32, y.count == 32 else {
                    throw AuthConfigurationError("EC JWK is not a P-256 key")
                }
                key = try PublicKey(p256X: x, y: y)
            default:
                throw AuthConfigurationError("JWK type is not supported")
            }
        } catch let error as CryptoError {
            if error.reason == .keyTooSmall { throw TokenVerificationError.signingKeyTooSmall }
            throw AuthConfigurationError(error.description)
        }
        self.keyID = kid
        self.algorithm = alg
        self.issuer = jwk.issuer
        self.publicKey = key
        self.bits = key.bits
    }
}
