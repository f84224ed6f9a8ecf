import COpenSSL

/// Verifies JWS signatures with OpenSSL's EVP_DigestVerify.
public enum SignatureVerifier {
    /// True when `signature` is a valid `key.algorithm` signature of `message`.
    public static func verify(signature: [UInt8], message: [UInt8], key: VerificationKey) -> Bool {
        message.withUnsafeBytes { verify(signature: signature, message: $0, key: key) }
    }

    public static func verify(signature: [UInt8], message: ArraySlice<UInt8>, key: VerificationKey) -> Bool {
        message.withUnsafeBytes { verify(signature: signature, message: $0, key: key) }
    }

    public static func verify(signature: [UInt8], message: UnsafeRawBufferPointer, key: VerificationKey) -> Bool {
        switch key.algorithm {
        case .rs256, .ps256:
            // A PKCS#1/PSS signature is exactly the modulus length (RFC 8017 8.2.2 step 1).
            guard signature.count == (key.bits + 7) / 8 else { return false }
            return digestVerify(signature: signature, message: message, key: key)
        case .es256:
            // JWS carries r||s (RFC 7518 3.4); OpenSSL wants a DER ECDSA-Sig-Value.
            guard signature.count == 64 else { return false }
            let der = ecdsaDER(r: signature[0..<32], s: signature[32..<64])
            return digestVerify(signature: der, message: message, key: key)
        }
    }

    private static func digestVerify(signature: [UInt8], message m: UnsafeRawBufferPointer, key: VerificationKey) -> Bool {
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        var pctx: OpaquePointer?
        guard EVP_DigestVerifyInit(ctx, &pctx, sha256, nil, key.pkey) == 1 else { ERR_clear_error(); return false }
        if key.algorithm == .ps256 {
            // RFC 7518 3.5: MGF1 with SHA-256 and a salt as long as the hash.
            guard EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, sha256) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1
            else { ERR_clear_error(); return false }
        }
        let ok = signature.withUnsafeBufferPointer { s in
            EVP_DigestVerify(ctx, s.baseAddress, s.count, m.baseAddress?.assumingMemoryBound(to: UInt8.self), m.count)
        }
        if ok != 1 { ERR_clear_error() }
        return ok == 1
    }

    /// Fetched once: implicit fetches per call cost measurable time in OpenSSL 3.
    nonisolated(unsafe) private static let sha256: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

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
