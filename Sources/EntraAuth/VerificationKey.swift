import COpenSSL

/// A public key bound to one kid and one algorithm, held as an OpenSSL EVP_PKEY.
/// Immutable after creation, so one instance is shared by all threads
/// (OpenSSL 3 allows concurrent verification with the same EVP_PKEY).
public final class VerificationKey: @unchecked Sendable {
    public static let minimumRSABits = 2048

    public let keyID: String
    public let algorithm: JWSAlgorithm
    public let bits: Int
    /// Entra's per-key issuer (may contain `{tenantid}`), when the key set carries one.
    public let issuer: String?
    let pkey: OpaquePointer

    // EVP_PKEY_PUBLIC_KEY is a compound macro Swift cannot import:
    // OSSL_KEYMGMT_SELECT_ALL_PARAMETERS (0x84) | OSSL_KEYMGMT_SELECT_PUBLIC_KEY (0x02).
    static let selectPublicKey: Int32 = 0x86

    /// Builds a key from a JWK. Throws `signingKeyTooSmall` for RSA keys under
    /// `minimumRSABits`, and `AuthConfigurationError` for anything unusable.
    public init(jwk: JWK, minimumRSABits: Int = VerificationKey.minimumRSABits) throws {
        guard let kid = jwk.keyID, !kid.isEmpty else { throw AuthConfigurationError("JWK has no kid") }
        guard let alg = jwk.boundAlgorithm else { throw AuthConfigurationError("JWK type or algorithm is not supported") }
        let key: OpaquePointer
        switch jwk.keyType {
        case "RSA":
            guard let n = jwk.n, let e = jwk.e else { throw AuthConfigurationError("RSA JWK lacks n or e") }
            key = try Self.rsaKey(n: n, e: e, minimumBits: minimumRSABits)
        case "EC":
            guard jwk.curve == "P-256", let x = jwk.x, let y = jwk.y, x.count == 32, y.count == 32 else {
                throw AuthConfigurationError("EC JWK is not a P-256 key")
            }
            key = try Self.p256Key(x: x, y: y)
        default:
            throw AuthConfigurationError("JWK type is not supported")
        }
        self.keyID = kid
        self.algorithm = alg
        self.issuer = jwk.issuer
        self.pkey = key
        self.bits = Int(EVP_PKEY_get_bits(key))
    }

    deinit { EVP_PKEY_free(pkey) }

    static func rsaKey(n: [UInt8], e: [UInt8], minimumBits: Int) throws -> OpaquePointer {
        let nBN = BN_bin2bn(n, Int32(n.count), nil)
        let eBN = BN_bin2bn(e, Int32(e.count), nil)
        defer { BN_free(nBN); BN_free(eBN) }
        guard let nBN, let eBN else { throw AuthConfigurationError("out of memory") }
        if Int(BN_num_bits(nBN)) < minimumBits { throw TokenVerificationError.signingKeyTooSmall }
        // e = 1 (or any even e) would make signatures trivial or the key broken.
        guard BN_is_odd(eBN) == 1, BN_num_bits(eBN) >= 2, BN_num_bits(eBN) <= 32 else {
            throw AuthConfigurationError("RSA public exponent is not acceptable")
        }
        return try fromData(type: "RSA") { bld in
            OSSL_PARAM_BLD_push_BN(bld, cString("n"), nBN) == 1 && OSSL_PARAM_BLD_push_BN(bld, cString("e"), eBN) == 1
        }
    }

    static func p256Key(x: [UInt8], y: [UInt8]) throws -> OpaquePointer {
        let point: [UInt8] = [0x04] + x + y  // SEC1 uncompressed; OpenSSL checks it lies on the curve
        return try point.withUnsafeBufferPointer { buf in
            try fromData(type: "EC") { bld in
                OSSL_PARAM_BLD_push_utf8_string(bld, cString("group"), cString("prime256v1"), 0) == 1
                    && OSSL_PARAM_BLD_push_octet_string(bld, cString("pub"), buf.baseAddress, buf.count) == 1
            }
        }
    }

    /// OSSL_PARAM_BLD keeps the name and value pointers until OSSL_PARAM_BLD_to_param,
    /// so they must outlive the call: a Swift String bridged to char* would not.
    private static func cString(_ s: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    private static func fromData(type: String, _ push: (OpaquePointer) -> Bool) throws -> OpaquePointer {
        guard let bld = OSSL_PARAM_BLD_new() else { throw AuthConfigurationError("out of memory") }
        defer { OSSL_PARAM_BLD_free(bld) }
        guard push(bld), let params = OSSL_PARAM_BLD_to_param(bld) else { throw AuthConfigurationError("cannot build key parameters") }
        defer { OSSL_PARAM_free(params) }
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, type, nil) else { throw AuthConfigurationError("key type unavailable") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_fromdata_init(ctx) == 1,
              EVP_PKEY_fromdata(ctx, &pkey, selectPublicKey, params) == 1,
              let key = pkey
        else {
            ERR_clear_error()
            throw AuthConfigurationError("OpenSSL rejected the public key")
        }
        return key
    }
}
