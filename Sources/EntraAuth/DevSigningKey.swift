import COpenSSL
import GatewaySupport
import MCPJSON

/// A local RSA-2048 signing key for development without Entra. Created once in
/// the state directory (PEM, mode 0600) and reused by every process; the dev
/// verifier trusts only this key's public half and never touches the network.
public final class DevSigningKey: @unchecked Sendable {
    public static let fileName = "dev-signing-key.pem"

    let pkey: OpaquePointer
    public let modulus: [UInt8]
    public let exponent: [UInt8]
    /// RFC 7638 JWK thumbprint (SHA-256, base64url): stable for the key's lifetime.
    public let keyID: String

    private init(pkey: OpaquePointer) throws {
        self.pkey = pkey
        func bn(_ name: StaticString) throws -> [UInt8] {
            var value: OpaquePointer?
            guard EVP_PKEY_get_bn_param(pkey, UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self), &value) == 1,
                  let value else { throw AuthConfigurationError("dev key is not an RSA key") }
            defer { BN_free(value) }
            var out = [UInt8](repeating: 0, count: (Int(BN_num_bits(value)) + 7) / 8)
            _ = BN_bn2bin(value, &out)
            return out
        }
        modulus = try bn("n")
        exponent = try bn("e")
        guard modulus.count * 8 >= VerificationKey.minimumRSABits else { throw TokenVerificationError.signingKeyTooSmall }
        keyID = Self.rsaThumbprint(n: modulus, e: exponent)
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    public static func rsaThumbprint(n: [UInt8], e: [UInt8]) -> String {
        let canonical = #"{"e":""# + Base64.encodeURL(e) + #"","kty":"RSA","n":""# + Base64.encodeURL(n) + #""}"#
        return Base64.encodeURL(SHA256Digest(Array(canonical.utf8)).bytes)
    }

    deinit { EVP_PKEY_free(pkey) }

    /// A fresh key held only in memory (tests, throwaway setups).
    public static func generate(bits: Int = 2048) throws -> DevSigningKey {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else { throw AuthConfigurationError("RSA unavailable") }
        defer { EVP_PKEY_CTX_free(ctx) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, Int32(bits)) == 1,
              EVP_PKEY_generate(ctx, &pkey) == 1, let pkey
        else { ERR_clear_error(); throw AuthConfigurationError("RSA key generation failed") }
        return try DevSigningKey(pkey: pkey)
    }

    /// Loads `<stateDirectory>/dev-signing-key.pem`, creating it on first use.
    /// Concurrent first starts agree on one key: creation never overwrites.
    public static func loadOrCreate(stateDirectory: String) throws -> DevSigningKey {
        try StateDirectory.ensure(stateDirectory)
        let path = stateDirectory + "/" + fileName
        try PrivateFiles.createSecretIfAbsent(path) { try generate().privateKeyPEM() }
        return try load(path: path)
    }

    public static func load(path: String) throws -> DevSigningKey {
        guard let pem = try PrivateFiles.readSecret(path, what: "dev signing key", maxBytes: 64 << 10) else {
            throw AuthConfigurationError("cannot read dev signing key \(path)")
        }
        // A memory BIO borrows the bytes, so it must be read while the buffer is pinned.
        let parsed = pem.withUnsafeBytes { raw -> OpaquePointer? in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let pkey = parsed else {
            ERR_clear_error()
            throw AuthConfigurationError("dev signing key \(path) is not a PEM private key")
        }
        return try DevSigningKey(pkey: pkey)
    }

    func privateKeyPEM() throws -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw AuthConfigurationError("out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) == 1 else {
            ERR_clear_error()
            throw AuthConfigurationError("cannot encode dev signing key")
        }
        var out = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
        let n = BIO_read(bio, &out, Int32(out.count))
        return Array(out.prefix(Int(max(n, 0))))
    }

    /// The public key as PEM SubjectPublicKeyInfo.
    public func publicKeyPEM() throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw AuthConfigurationError("out of memory") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PUBKEY(bio, pkey) == 1 else {
            ERR_clear_error()
            throw AuthConfigurationError("cannot encode dev public key")
        }
        var out = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
        let n = BIO_read(bio, &out, Int32(out.count))
        return String(decoding: out.prefix(Int(max(n, 0))), as: UTF8.self)
    }

    /// The public key as a JWK (RS256, use=sig).
    public var publicJWK: JSONObject {
        JSONObject(["kty": "RSA", "use": "sig", "alg": "RS256", "kid": .string(keyID),
                    "n": .string(Base64.encodeURL(modulus)), "e": .string(Base64.encodeURL(exponent))])
    }

    /// `{"keys":[<publicJWK>]}`, e.g. to publish at a dev JWKS endpoint.
    public var jwks: JSONValue { .object(JSONObject(["keys": .array([.object(publicJWK)])])) }

    public func verificationKey() throws -> VerificationKey {
        try VerificationKey(jwk: JWK(publicJWK)!)
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    public func signRS256(_ message: [UInt8]) throws -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw AuthConfigurationError("out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        var length = 0
        guard EVP_DigestSignInit(ctx, nil, EVP_sha256(), nil, pkey) == 1,
              EVP_DigestSign(ctx, nil, &length, message, message.count) == 1
        else { ERR_clear_error(); throw AuthConfigurationError("signing failed") }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(ctx, &signature, &length, message, message.count) == 1 else {
            ERR_clear_error()
            throw AuthConfigurationError("signing failed")
        }
        return Array(signature.prefix(length))
    }
}
