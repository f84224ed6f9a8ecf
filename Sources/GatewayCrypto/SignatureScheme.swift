/// The signature schemes the gateway verifies, all over SHA-256 (RFC 7518 section 3).
package enum SignatureScheme: Sendable, CaseIterable {
    /// RSASSA-PKCS1-v1_5.
    case rs256
    /// RSASSA-PSS with MGF1-SHA-256 and a 32-byte salt.
    case ps256
    /// ECDSA on P-256; the signature is r||s, 32 bytes each.
    case es256
}

/// How an RSA private key signs over SHA-256.
package enum RSAPadding: Sendable {
    /// RSASSA-PKCS1-v1_5, as JWS RS256.
    case pkcs1v15
    /// RSASSA-PSS with MGF1-SHA-256 and a salt as long as the digest, as JWS PS256.
    case pss
}
