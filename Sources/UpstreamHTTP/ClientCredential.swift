import EntraAuth
import FoundationEssentials
import Glibc
import GatewayCrypto
import GatewaySupport
import MCPJSON

/// The gateway's own confidential-client credential at Entra ID: a client secret, or a
/// certificate whose private key signs a client assertion (RFC 7523 `private_key_jwt`).
/// Nothing here is ever logged or put into an error message.
public enum ClientCredential: Sendable {
    case secret(ClientSecret)
    case certificate(ClientCertificate)

    /// Reads what the `credential` config section names. Errors say which source failed, never its content.
    public static func load(_ c: ClientCredentialSources, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ClientCredential {
        if let path = c.clientSecretFile {
            try requirePrivate(path, what: "client secret file")
            guard let data = FileManager.default.contents(atPath: path) else {
                throw TokenBrokerError.credentialUnavailable("cannot read the client secret file \(path)")
            }
            let secret = String(decoding: data, as: UTF8.self).trimmingASCIIWhitespaceAndNewlines()
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

    /// The form fields that authenticate the gateway at a token endpoint: the secret, or a
    /// client assertion signed for that endpoint (its audience).
    package func tokenRequestFields(clientId: String, endpoint: String, now: Int) throws -> [(String, String)] {
        switch self {
        case .secret(let s): return [("client_secret", s.value)]
        case .certificate(let c):
            return [("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", try c.assertion(clientId: clientId, audience: endpoint, now: now))]
        }
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

/// Where the credential lives, as the `credential` config section names it: a secret file,
/// an environment variable, or a certificate (and its key). Never the secret itself.
public protocol ClientCredentialSources {
    var clientSecretFile: String? { get }
    var clientSecretEnv: String? { get }
    var certificateFile: String? { get }
    /// nil: the private key is in `certificateFile` (one PEM holding both).
    var privateKeyFile: String? { get }
    var assertionAlgorithm: ClientCertificate.Algorithm { get }
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

    private let privateKey: PrivateKey
    /// base64url SHA-256 of the DER certificate.
    public let thumbprintS256: String
    public let algorithm: Algorithm
    public var description: String { "<client certificate x5t#S256=\(thumbprintS256)>" }

    private init(privateKey: PrivateKey, thumbprint: String, algorithm: Algorithm) {
        self.privateKey = privateKey
        self.thumbprintS256 = thumbprint
        self.algorithm = algorithm
    }

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
        guard let certificate = try? Certificate(pem: certificatePEM) else {
            throw TokenBrokerError.credentialUnavailable("the certificate file holds no PEM certificate")
        }
        guard let key = try? PrivateKey(pem: privateKeyPEM) else {
            throw TokenBrokerError.credentialUnavailable("the private key file holds no unencrypted PEM private key")
        }
        guard key.isRSA else { throw TokenBrokerError.credentialUnavailable("the certificate's private key must be RSA") }
        return ClientCertificate(privateKey: key, thumbprint: Base64.encodeURL(certificate.sha256Thumbprint.bytes), algorithm: algorithm)
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
        do {
            return try privateKey.sign(message, padding: algorithm == .ps256 ? .pss : .pkcs1v15)
        } catch {
            throw TokenBrokerError.credentialUnavailable(error.reason == .rejected ? "cannot sign with the certificate's private key" : error.description)
        }
    }
}
