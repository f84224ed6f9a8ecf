import COpenSSL

/// AES-256-GCM with a 96-bit nonce and a 128-bit tag. The caller supplies the nonce
/// and must never reuse one under the same key.
package struct AES256GCM: Sendable {
    package static let keyLength = 32
    package static let nonceLength = 12
    package static let tagLength = 16

    private let key: [UInt8]

    /// `rejected` unless `key` is exactly 32 bytes.
    package init(key: [UInt8]) throws(CryptoError) {
        guard key.count == Self.keyLength else { throw CryptoError(.rejected, "an AES-256 key is 32 bytes, not \(key.count)") }
        self.key = key
    }

    /// Encrypts `plaintext` and authenticates it together with `associatedData`.
    package func seal(_ plaintext: [UInt8], nonce: [UInt8], associatedData: [UInt8]) throws(CryptoError) -> (ciphertext: [UInt8], tag: [UInt8]) {
        try Self.requireNonce(nonce)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .outOfMemory }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: Self.tagLength)
        var length: Int32 = 0, total = 0
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceLength), nil) == 1,
              EVP_EncryptInit_ex(ctx, nil, nil, key, nonce) == 1,
              EVP_EncryptUpdate(ctx, nil, &length, associatedData, Int32(associatedData.count)) == 1,
              EVP_EncryptUpdate(ctx, &out, &length, plaintext, Int32(plaintext.count)) == 1
        else { ERR_clear_error(); throw CryptoError(.failed, "encryption failed") }
        total = Int(length)
        let finished = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        guard finished == 1, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagLength), &tag) == 1
        else { ERR_clear_error(); throw CryptoError(.failed, "encryption failed") }
        total += Int(length)
        return (Array(out.prefix(total)), tag)
    }

    /// The plaintext, or `notAuthentic` when the ciphertext, tag, associated data or key differ from the seal.
    package func open(_ ciphertext: [UInt8], tag: [UInt8], nonce: [UInt8], associatedData: [UInt8]) throws(CryptoError) -> [UInt8] {
        try Self.requireNonce(nonce)
        guard tag.count == Self.tagLength else { throw CryptoError(.rejected, "a GCM tag is 16 bytes, not \(tag.count)") }
        var tag = tag
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .outOfMemory }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceLength), nil) == 1,
              EVP_DecryptInit_ex(ctx, nil, nil, key, nonce) == 1,
              EVP_DecryptUpdate(ctx, nil, &length, associatedData, Int32(associatedData.count)) == 1,
              EVP_DecryptUpdate(ctx, &out, &length, ciphertext, Int32(ciphertext.count)) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), &tag) == 1
        else { ERR_clear_error(); throw CryptoError(.failed, "decryption failed") }
        let total = Int(length)
        // The tag is checked here: a changed byte, another key or other associated data all fail.
        let verified = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        guard verified == 1 else { ERR_clear_error(); throw CryptoError(.notAuthentic, "the sealed data does not authenticate") }
        return Array(out.prefix(total + Int(length)))
    }

    private static func requireNonce(_ nonce: [UInt8]) throws(CryptoError) {
        guard nonce.count == nonceLength else { throw CryptoError(.rejected, "a GCM nonce is 12 bytes, not \(nonce.count)") }
    }
}
