import GatewayCrypto
import GatewaySupport
import MCPJSON

/// A local RSA-2048 signing key for development without Entra. Created once in
/// the state directory (PEM, mode 0600) and reused by every process; the dev
/// verifier trusts only this key's public half and never touches the network.
public final class DevSigningKey: @unchecked Sendable {
    public static let fileName = "dev-signing-key.pem"

    let privateKey: PrivateKey
    public let modulus: [UInt8]
    public let exponent: [UInt8]
    /// RFC 7638 JWK thumbprint (SHA-256, base64url): stable for the key's lifetime.
    public let keyID: String

    private init(privateKey: PrivateKey) throws {
        self.privateKey = privateKey
        do {
            (modulus, exponent) = try privateKey.rsaPublicNumbers()
        } catch {
            throw AuthConfigurationError("dev key is not an RSA key")
        }
        guard modulus.count * 8 >= VerificationKey.minimumRSABits else { throw TokenVerificationError.signingKeyTooSmall }
        keyID = Self.rsaThumbprint(n: modulus, e: exponent)
    }

    /// RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace.
    public static func rsaThumbprint(n: [UInt8], e: [UInt8]) -> String {
        let canonical = #"{"e":""# + Base64.encodeURL(e) + #"","kty":"RSA","n":""# + Base64.encodeURL(n) + #""}"#
        return Base64.encodeURL(SHA256Digest(Array(canonical.utf8)).bytes)
    }

    /// A fresh key held only in memory (tests, throwaway setups).
    public static func generate(bits: Int = 2048) throws -> DevSigningKey {
        let key: PrivateKey
        do { key = try PrivateKey.generateRSA(bits: bits) } catch { throw AuthConfigurationError(error.description) }
        return try DevSigningKey(privateKey: key)
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
        let key: PrivateKey
        do { key = try PrivateKey(pem: pem) } catch {
            throw AuthConfigurationError("dev signing key \(path) is not a PEM private key")
        }
        return try DevSigningKey(privateKey: key)
    }

    func privateKeyPEM() throws -> [UInt8] {
        do { return try privateKey.privateKeyPEM() } catch { throw Self.configurationError(error, "cannot encode dev signing key") }
    }

    /// The public key as PEM SubjectPublicKeyInfo.
    public func publicKeyPEM() throws -> String {
        do {
            return String(decoding: try privateKey.publicKeyPEM(), as: UTF8.self)
        } catch {
            throw Self.configurationError(error, "cannot encode dev public key")
        }
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
        do { return try privateKey.sign(message, padding: .pkcs1v15) } catch { throw Self.configurationError(error, "signing failed") }
    }

    /// `message` for what failed, unless OpenSSL ran out of memory.
    private static func configurationError(_ error: CryptoError, _ message: String) -> AuthConfigurationError {
        AuthConfigurationError(error.reason == .outOfMemory ? error.description : message)
    }
}
