import COpenSSL

/// A private key held as an OpenSSL EVP_PKEY; it signs with RSA over SHA-256.
/// Immutable after creation, so one instance is shared by all threads.
package final class PrivateKey: @unchecked Sendable {
    let pkey: OpaquePointer

    private init(pkey: OpaquePointer) { self.pkey = pkey }

    deinit { EVP_PKEY_free(pkey) }

    /// The first private key in unencrypted PEM (PKCS#8 or traditional); `rejected` otherwise.
    /// An RSA key alone in its file is read without OpenSSL's decoders (`RSAPrivateKeyNumbers`).
    package convenience init(pem: [UInt8]) throws(CryptoError) {
        if let numbers = RSAPrivateKeyNumbers.parse(pem: pem) {
            self.init(pkey: try Self.importRSA(numbers))
            return
        }
        guard let pkey = readingMemoryBIO(pem, { PEM_read_bio_PrivateKey($0, nil, nil, nil) }) else {
            ERR_clear_error()
            throw CryptoError(.rejected, "not an unencrypted PEM private key")
        }
        self.init(pkey: pkey)
    }

    /// The key OpenSSL's RSA key manager makes of `numbers` (EVP_PKEY_fromdata), as it would from DER.
    private static func importRSA(_ numbers: RSAPrivateKeyNumbers) throws(CryptoError) -> OpaquePointer {
        let fields: [(StaticString, [UInt8])] = [
            ("n", numbers.n), ("e", numbers.e), ("d", numbers.d), ("rsa-factor1", numbers.p), ("rsa-factor2", numbers.q),
            ("rsa-exponent1", numbers.dp), ("rsa-exponent2", numbers.dq), ("rsa-coefficient1", numbers.qinv),
        ]
        var bignums: [OpaquePointer] = []
        defer { bignums.forEach { BN_clear_free($0) } }
        for (_, bytes) in fields {
            guard let bn = BN_bin2bn(bytes, Int32(bytes.count), nil) else { throw .outOfMemory }
            bignums.append(bn)
        }
        guard let bld = OSSL_PARAM_BLD_new() else { throw .outOfMemory }
        defer { OSSL_PARAM_BLD_free(bld) }
        for ((name, _), bn) in zip(fields, bignums) {
            // The name must outlive OSSL_PARAM_BLD_to_param: a StaticString's bytes do.
            let key = UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
            guard OSSL_PARAM_BLD_push_BN(bld, key, bn) == 1 else { throw .outOfMemory }
        }
        guard let params = OSSL_PARAM_BLD_to_param(bld) else { throw .outOfMemory }
        defer { OSSL_PARAM_free(params) }
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else { throw CryptoError(.unsupported, "RSA unavailable") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_fromdata_init(ctx) == 1, EVP_PKEY_fromdata(ctx, &pkey, selectKeyPair, params) == 1, let pkey else {
            ERR_clear_error()
            throw CryptoError(.rejected, "not an unencrypted PEM private key")
        }
        return pkey
    }

    // EVP_PKEY_KEYPAIR is a compound macro Swift cannot import: EVP_PKEY_PUBLIC_KEY (0x86) | OSSL_KEYMGMT_SELECT_PRIVATE_KEY (0x01).
    static let selectKeyPair: Int32 = 0x87

    /// A fresh RSA key of `bits` bits (public exponent 65537, OpenSSL's default).
    package static func generateRSA(bits: Int) throws(CryptoError) -> PrivateKey {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else { throw CryptoError(.unsupported, "RSA unavailable") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, Int32(bits)) == 1,
              EVP_PKEY_generate(ctx, &pkey) == 1, let pkey
        else { ERR_clear_error(); throw CryptoError(.failed, "RSA key generation failed") }
        return PrivateKey(pkey: pkey)
    }

    /// True for a plain RSA key (not RSA-PSS-restricted, not EC).
    package var isRSA: Bool { EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA }

    /// The RSA modulus and public exponent, big-endian without leading zeros; `rejected` for a key without them.
    package func rsaPublicNumbers() throws(CryptoError) -> (modulus: [UInt8], exponent: [UInt8]) {
        func number(_ name: StaticString) throws(CryptoError) -> [UInt8] {
            var value: OpaquePointer?
            guard EVP_PKEY_get_bn_param(pkey, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self), &value) == 1,
                  let value else { throw CryptoError(.rejected, "not an RSA key") }
            defer { BN_free(value) }
            var out = [UInt8](repeating: 0, count: (Int(BN_num_bits(value)) + 7) / 8)
            _ = BN_bn2bin(value, &out)
            return out
        }
        return (try number("n"), try number("e"))
    }

    /// The private key as unencrypted PKCS#8 PEM.
    package func privateKeyPEM() throws(CryptoError) -> [UInt8] {
        guard let pem = try writtenToMemoryBIO({ PEM_write_bio_PrivateKey($0, pkey, nil, nil, 0, nil, nil) == 1 }) else {
            throw CryptoError(.failed, "cannot encode the private key")
        }
        return pem
    }

    /// The public half as PEM SubjectPublicKeyInfo.
    package func publicKeyPEM() throws(CryptoError) -> [UInt8] {
        guard let pem = try writtenToMemoryBIO({ PEM_write_bio_PUBKEY($0, pkey) == 1 }) else {
            throw CryptoError(.failed, "cannot encode the public key")
        }
        return pem
    }

    /// An RSA signature over SHA-256 of `message`. `rejected` when the key cannot sign,
    /// `unsupported` when PSS cannot be set up, `failed` when signing itself fails.
    package func sign(_ message: [UInt8], padding: RSAPadding) throws(CryptoError) -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw .outOfMemory }
        defer { EVP_MD_CTX_free(ctx) }
        var pctx: OpaquePointer?
        guard EVP_DigestSignInit(ctx, &pctx, sha256Algorithm, nil, pkey) == 1 else {
            ERR_clear_error()
            throw CryptoError(.rejected, "cannot sign with this private key")
        }
        if padding == .pss {
            // PSS with a salt as long as the digest, as RFC 7518 3.5 requires for PS256;
            // MGF1 uses the signing digest, SHA-256, by default.
            guard EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 else {
                ERR_clear_error()
                throw CryptoError(.unsupported, "RSA-PSS is unavailable")
            }
        }
        var length = 0
        guard EVP_DigestSign(ctx, nil, &length, message, message.count) == 1 else {
            ERR_clear_error()
            throw CryptoError(.failed, "signing failed")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(ctx, &signature, &length, message, message.count) == 1 else {
            ERR_clear_error()
            throw CryptoError(.failed, "signing failed")
        }
        return Array(signature.prefix(length))
    }
}
