import COpenSSL
import Foundation
import GatewaySupport

public struct SessionCipherError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// AES-256-GCM for backend session cookies at rest: a random 96-bit nonce per seal and
/// the row's key as associated data, so a sealed value moved to another row does not open.
/// Layout: version (1) · nonce (12) · ciphertext · tag (16).
public final class SessionCipher: Sendable {
    static let version: UInt8 = 1
    static let nonceLength = 12
    static let tagLength = 16
    static let keyLength = 32
    public static let keyFileName = "backend-sessions.key"

    private let key: [UInt8]

    public init(key: [UInt8]) throws {
        guard key.count == Self.keyLength else { throw SessionCipherError("the session key must be 32 bytes, not \(key.count)") }
        self.key = key
    }

    /// The key in `<state_dir>/backend-sessions.key`, created with mode 0600 on first start.
    /// The file appears complete or not at all: it is written under a private name, then
    /// hard-linked into place, which fails if another process got there first; then everyone reads the winner.
    public static func loadOrCreate(stateDirectory: String) throws -> SessionCipher {
        let path = stateDirectory + "/" + keyFileName
        try PrivateFiles.createSecretIfAbsent(path) {
            var fresh = [UInt8](repeating: 0, count: keyLength)
            guard RAND_bytes(&fresh, Int32(keyLength)) == 1 else { throw SessionCipherError("no randomness for the session key") }
            return fresh
        }
        guard let key = try PrivateFiles.readSecret(path, what: "backend session key", maxBytes: keyLength) else {
            throw SessionCipherError("\(path) vanished while starting")
        }
        guard key.count == keyLength else { throw SessionCipherError("\(path) must hold exactly 32 bytes") }
        return try SessionCipher(key: key)
    }

    public func seal(_ plaintext: [UInt8], associatedData: [UInt8]) throws -> [UInt8] {
        var nonce = [UInt8](repeating: 0, count: Self.nonceLength)
        guard RAND_bytes(&nonce, Int32(Self.nonceLength)) == 1 else { throw SessionCipherError("no randomness for a nonce") }
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SessionCipherError("out of memory") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        var tag = [UInt8](repeating: 0, count: Self.tagLength)
        var length: Int32 = 0, total = 0
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceLength), nil) == 1,
              EVP_EncryptInit_ex(ctx, nil, nil, key, nonce) == 1,
              EVP_EncryptUpdate(ctx, nil, &length, associatedData, Int32(associatedData.count)) == 1,
              EVP_EncryptUpdate(ctx, &out, &length, plaintext, Int32(plaintext.count)) == 1
        else { throw SessionCipherError("encryption failed") }
        total = Int(length)
        let finished = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        guard finished == 1, EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagLength), &tag) == 1
        else { throw SessionCipherError("encryption failed") }
        total += Int(length)
        return [Self.version] + nonce + out.prefix(total) + tag
    }

    public func unseal(_ sealed: [UInt8], associatedData: [UInt8]) throws -> [UInt8] {
        let overhead = 1 + Self.nonceLength + Self.tagLength
        guard sealed.count >= overhead, sealed[0] == Self.version else { throw SessionCipherError("not a sealed session") }
        let nonce = Array(sealed[1...Self.nonceLength])
        let body = Array(sealed[(1 + Self.nonceLength)..<(sealed.count - Self.tagLength)])
        var tag = Array(sealed.suffix(Self.tagLength))
        guard let ctx = EVP_CIPHER_CTX_new() else { throw SessionCipherError("out of memory") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: body.count + 16)
        var length: Int32 = 0
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceLength), nil) == 1,
              EVP_DecryptInit_ex(ctx, nil, nil, key, nonce) == 1,
              EVP_DecryptUpdate(ctx, nil, &length, associatedData, Int32(associatedData.count)) == 1,
              EVP_DecryptUpdate(ctx, &out, &length, body, Int32(body.count)) == 1,
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), &tag) == 1
        else { throw SessionCipherError("decryption failed") }
        let total = Int(length)
        // The tag is checked here: a changed byte, another key or another row's data all fail.
        let verified = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + total, &length) }
        guard verified == 1 else { throw SessionCipherError("the sealed session does not authenticate") }
        return Array(out.prefix(total + Int(length)))
    }
}
