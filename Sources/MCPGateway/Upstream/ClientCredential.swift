import COpenSSL
import EntraAuth
import Foundation
import GatewaySupport
import MCPJSON

/// The gateway's own confidential-client credential at Entra ID: a client secret, or a
/// certificate whose private key signs a client assertion (RFC 7523 `private_key_jwt`).
/// Nothing here is ever logged or put into an error message.
public enum ClientCredential: Sendable {
    case secret(ClientSecret)
    case certificate(ClientCertificate)

    /// Reads what the `credential` config section names. Errors say which source failed, never its content.
    public static func load(_ c: CredentialConfig, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ClientCredential {
        if let path = c.clientSecretFile {
            try requirePrivate(path, what: "client secret file")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TokenBrokerError.credentialUnavailable("cannot read the client secret file \(path)")
            }
            let secret = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !secret.isEmpty else { throw TokenBrokerError.credentialUnavailable("the client secret file \(path) is empty") }
            return .secret(ClientSecret(secret))
        }
        if let name = c.clientSecretEnv {
            guard let secret = environment[name], !secret.isEmpty else {
                throw TokenBrokerError.credentialUnavailable("the environment variable \(name) (client secret) is not set")
            }
            return .secret(ClientSecret(secret))
        }
        if let cert = c.certificateFile {
            return .certificate(try ClientCertificate.load(certificatePath: cert, privateKeyPath: c.privateKeyFile ?? cert,
                                                           algorithm: c.assertionAlgorithm))
        }
        throw TokenBrokerError.credentialUnavailable("no client secret or certificate is configured")
    }

    /// A secret readable by group or others is not secret; refuse it like ssh does.
    static func requirePrivate(_ path: String, what: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TokenBrokerError.credentialUnavailable("cannot read the \(what) \(path)") }
        if st.st_mode & 0o077 != 0 {
            throw TokenBrokerError.credentialUnavailable("the \(what) \(path) must not be readable by group or others (chmod 600)")
        }
    }
}

/// A client secret that hides itself from `print`, string interpolation and reflection.
public struct ClientSecret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String
    init(_ value: String) { self.value = value }
    public var description: String { "<client secret>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// Signs client assertions with the certificate's private key: PS256 (Entra's current
/// guidance) or RS256, with the certificate's SHA-256 thumbprint as `x5t#S256`.
public final class ClientCertificate: @unchecked Sendable, CustomStringConvertible {
    public enum Algorithm: String, Sendable { case ps256 = "PS256", rs256 = "RS256" }

    private let pkey: OpaquePointer
    /// base64url SHA-256 of the DER certificate.
    public let thumbprintS256: String
    public let algorithm: Algorithm
    public var description: String { "<client certificate x5t#S256=\(thumbprintS256)>" }

    private init(pkey: OpaquePointer, thumbprint: String, algorithm: Algorithm) {
        self.pkey = pkey
        self.thumbprintS256 = thumbprint
        self.algorithm = algorithm
    }

    deinit { EVP_PKEY_free(pkey) }

    public static func load(certificatePath: String, privateKeyPath: String, algorithm: Algorithm = .ps256) throws -> ClientCertificate {
        try ClientCredential.requirePrivate(privateKeyPath, what: "private key file")
        guard let certPEM = FileManager.default.contents(atPath: certificatePath) else {
            throw TokenBrokerError.credentialUnavailable("cannot read the certificate file \(certificatePath)")
        }
        guard let keyPEM = FileManager.default.contents(atPath: privateKeyPath) else {
            throw TokenBrokerError.credentialUnavailable("cannot read the private key file \(privateKeyPath)")
        }
        return try from(certificatePEM: Array(certPEM), privateKeyPEM: Array(keyPEM), algorithm: algorithm)
    }

    public static func from(certificatePEM: [UInt8], privateKeyPEM: [UInt8], algorithm: Algorithm = .ps256) throws -> ClientCertificate {
        // Memory BIOs borrow the bytes: read them while the buffers are pinned.
        let der: [UInt8]? = certificatePEM.withUnsafeBytes { raw in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
            defer { BIO_free(bio) }
            guard let x509 = PEM_read_bio_X509(bio, nil, nil, nil) else { return nil }
            defer { X509_free(x509) }
            var out: UnsafeMutablePointer<UInt8>?
            let n = i2d_X509(x509, &out)
            guard n > 0, let out else { return nil }
            defer { CRYPTO_free(out, #file, #line) }
            return Array(UnsafeBufferPointer(start: out, count: Int(n)))
        }
        guard let der else { ERR_clear_error(); throw TokenBrokerError.credentialUnavailable("the certificate file holds no PEM certificate") }
        let key: OpaquePointer? = privateKeyPEM.withUnsafeBytes { raw in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { ERR_clear_error(); throw TokenBrokerError.credentialUnavailable("the private key file holds no unencrypted PEM private key") }
        guard EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA else {
            EVP_PKEY_free(key)
            throw TokenBrokerError.credentialUnavailable("the certificate's private key must be RSA")
        }
        return ClientCertificate(pkey: key, thumbprint: Base64.encodeURL(SHA256Digest(der).bytes), algorithm: algorithm)
    }

    /// A signed client assertion for `audience` (the token endpoint), valid for ten minutes.
    func assertion(clientId: String, audience: String, now: Int) throws -> String {
        let header: JSONValue = ["alg": .string(algorithm.rawValue), "typ": "JWT", "x5t#S256": .string(thumbprintS256)]
        let claims: JSONValue = ["aud": .string(audience), "iss": .string(clientId), "sub": .string(clientId),
                                 "jti": .string(Hex.random(words: 2)),
                                 "nbf": .integer(now), "iat": .integer(now), "exp": .integer(now + 600)]
        let input = Base64.encodeURL(JSONWriter.serialize(header)) + "." + Base64.encodeURL(JSONWriter.serialize(claims))
        return input + "." + Base64.encodeURL(try sign(Array(input.utf8)))
    }

    func sign(_ message: [UInt8]) throws -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw TokenBrokerError.credentialUnavailable("out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        var pctx: OpaquePointer?
        var length = 0
        guard EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), nil, pkey) == 1 else {
            ERR_clear_error()
            throw TokenBrokerError.credentialUnavailable("cannot sign with the certificate's private key")
        }
        if algorithm == .ps256 {
            // PSS with a salt as long as the digest, as RFC 7518 §3.5 requires for PS256.
            guard EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1,
                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 else {
                ERR_clear_error()
                throw TokenBrokerError.credentialUnavailable("RSA-PSS is unavailable")
            }
        }
        guard EVP_DigestSign(ctx, nil, &length, message, message.count) == 1 else {
            ERR_clear_error()
            throw TokenBrokerError.credentialUnavailable("signing failed")
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(ctx, &signature, &length, message, message.count) == 1 else {
            ERR_clear_error()
            throw TokenBrokerError.credentialUnavailable("signing failed")
        }
        return Array(signature.prefix(length))
    }
}
