import COpenSSL

/// A public key (RSA or EC P-256) held as an OpenSSL EVP_PKEY. Immutable after creation,
/// so one instance is shared by all threads (OpenSSL 3 allows concurrent verification
/// with the same EVP_PKEY).
package final class PublicKey: @unchecked Sendable {
    let pkey: OpaquePointer
    /// The modulus length for RSA, the curve size for EC.
    package let bits: Int

    // EVP_PKEY_PUBLIC_KEY is a compound macro Swift cannot import:
    // OSSL_KEYMGMT_SELECT_ALL_PARAMETERS (0x84) | OSSL_KEYMGMT_SELECT_PUBLIC_KEY (0x02).
    static let selectPublicKey: Int32 = 0x86

    private init(pkey: OpaquePointer) {
        self.pkey = pkey
        self.bits = Int(EVP_PKEY_get_bits(pkey))
    }

    deinit { EVP_PKEY_free(pkey) }

    /// An RSA key from its big-endian modulus and exponent. Throws `keyTooSmall` when the
    /// modulus has fewer than `minimumBits` bits, and `rejected` for an unusable exponent.
    package convenience init(rsaModulus n: [UInt8], exponent e: [UInt8], minimumBits: Int) throws(CryptoError) {
        let nBN = BN_bin2bn(n, Int32(n.count), nil)
        let eBN = BN_bin2bn(e, Int32(e.count), nil)
        defer { BN_free(nBN); BN_free(eBN) }
        guard let nBN, let eBN else { throw .outOfMemory }
        if Int(BN_num_bits(nBN)) < minimumBits {
            throw CryptoError(.keyTooSmall, "the RSA modulus is shorter than \(minimumBits) bits")
        }
        // e = 1 (or any even e) would make signatures trivial or the key broken.
        guard BN_is_odd(eBN) == 1, BN_num_bits(eBN) >= 2, BN_num_bits(eBN) <= 32 else {
            throw CryptoError(.rejected, "RSA public exponent is not acceptable")
        }
        self.init(pkey: try Self.fromData(type: "RSA") { bld in
            OSSL_PARAM_BLD_push_BN(bld, Self.cString("n"), nBN) == 1 && OSSL_PARAM_BLD_push_BN(bld, Self.cString("e"), eBN) == 1
        })
    }

    /// A P-256 key from its 32-byte affine coordinates; OpenSSL checks the point lies on the curve.
    package convenience init(p256X x: [UInt8], y: [UInt8]) throws(CryptoError) {
        let point: [UInt8] = [0x04] + x + y  // SEC1 uncompressed
        let pkey: Result<OpaquePointer, CryptoError> = point.withUnsafeBufferPointer { buf in
            Result { () throws(CryptoError) in
                try Self.fromData(type: "EC") { bld in
                    OSSL_PARAM_BLD_push_utf8_string(bld, Self.cString("group"), Self.cString("prime256v1"), 0) == 1
                        && OSSL_PARAM_BLD_push_octet_string(bld, Self.cString("pub"), buf.baseAddress, buf.count) == 1
                }
            }
        }
        self.init(pkey: try pkey.get())
    }

    /// OSSL_PARAM_BLD keeps the name and value pointers until OSSL_PARAM_BLD_to_param,
    /// so they must outlive the call: a Swift String bridged to char* would not.
    private static func cString(_ s: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    private static func fromData(type: String, _ push: (OpaquePointer) -> Bool) throws(CryptoError) -> OpaquePointer {
        guard let bld = OSSL_PARAM_BLD_new() else { throw .outOfMemory }
        defer { OSSL_PARAM_BLD_free(bld) }
        guard push(bld), let params = OSSL_PARAM_BLD_to_param(bld) else { throw CryptoError(.rejected, "cannot build key parameters") }
        defer { OSSL_PARAM_free(params) }
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, type, nil) else { throw CryptoError(.unsupported, "key type unavailable") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_fromdata_init(ctx) == 1,
              EVP_PKEY_fromdata(ctx, &pkey, selectPublicKey, params) == 1,
              let key = pkey
        else {
            ERR_clear_error()
            throw CryptoError(.rejected, "OpenSSL rejected the public key")
        }
        return key
    }

    /// True when `signature` is a valid `scheme` signature of `message` by this key.
    package func isValidSignature(_ signature: [UInt8], of message: UnsafeRawBufferPointer, scheme: SignatureScheme) -> Bool {
        switch scheme {
        case .rs256, .ps256:
            // A PKCS#1/PSS signature is exactly the modulus length (RFC 8017 8.2.2 step 1).
            guard signature.count == (bits + 7) / 8 else { return false }
            return digestVerify(signature: signature, message: message, pss: scheme == .ps256)
        case .es256:
            // JWS carries r||s (RFC 7518 3.4); OpenSSL wants a DER ECDSA-Sig-Value.
            guard signature.count == 64 else { return false }
            let der = Self.ecdsaDER(r: signature[0..<32], s: signature[32..<64])
            return digestVerify(signature: der, message: message, pss: false)
        }
    }

    private func digestVerify(signature: [UInt8], message m: UnsafeRawBufferPointer, pss: Bool) -> Bool {
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        var pctx: OpaquePointer?
        guard EVP_DigestVerifyInit(ctx, &pctx, sha256Algorithm, nil, pkey) == 1 else { ERR_clear_error(); return false }
        if pss {
            // RFC 7518 3.5: MGF1 with SHA-256 and a salt as long as the hash.
            guard EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, sha256Algorithm) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1
            else { ERR_clear_error(); return false }
        }
        let ok = signature.withUnsafeBufferPointer { s in
            EVP_DigestVerify(ctx, s.baseAddress, s.count, m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count)
        }
        if ok != 1 { ERR_clear_error() }
        return ok == 1
    }

    /// DER `SEQUENCE { INTEGER r, INTEGER s }` from big-endian unsigned halves.
    static func ecdsaDER(r: ArraySlice<UInt8>, s: ArraySlice<UInt8>) -> [UInt8] {
        func integer(_ v: ArraySlice<UInt8>) -> [UInt8] {
            var body = Array(v.drop { $0 == 0 })
            if body.isEmpty { body = [0] }
            if body[0] & 0x80 != 0 { body.insert(0, at: 0) }
            return [0x02, UInt8(body.count)] + body
        }
        let content = integer(r) + integer(s)
        return [0x30, UInt8(content.count)] + content  // at most 70 bytes: short-form length
    }
}
