import FoundationEssentials
import GatewayCrypto
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
    static let nonceLength = AES256GCM.nonceLength
    static let tagLength = AES256GCM.tagLength
    static let keyLength = AES256GCM.keyLength
    public static let keyFileName = "backend-sessions.key"

    private let cipher: AES256GCM

    public init(key: [UInt8]) throws {
        guard key.count == Self.keyLength else { throw SessionCipherError("the session key must be 32 bytes, not \(key.count)") }
        cipher = try AES256GCM(key: key)
    }

    /// The key in `<state_dir>/backend-sessions.key`, created with mode 0600 on first start.
    /// The file appears complete or not at all: it is written under a private name, then
    /// hard-linked into place, which fails if another process got there first; then everyone reads the winner.
    public static func loadOrCreate(stateDirectory: String, fileName: String = keyFileName) throws -> SessionCipher {
        let path = stateDirectory + "/" + fileName
        try PrivateFiles.createSecretIfAbsent(path) {
            guard let fresh = SecureRandom.bytes(keyLength) else { throw SessionCipherError("no randomness for the session key") }
            return fresh
        }
        guard let key = try PrivateFiles.readSecret(path, what: "backend session key", maxBytes: keyLength) else {
            throw SessionCipherError("\(path) vanished while starting")
        }
        guard key.count == keyLength else { throw SessionCipherError("\(path) must hold exactly 32 bytes") }
        return try SessionCipher(key: key)
    }

    public func seal(_ plaintext: [UInt8], associatedData: [UInt8]) throws -> [UInt8] {
        guard let nonce = SecureRandom.bytes(Self.nonceLength) else { throw SessionCipherError("no randomness for a nonce") }
        do {
            let (ciphertext, tag) = try cipher.seal(plaintext, nonce: nonce, associatedData: associatedData)
            return [Self.version] + nonce + ciphertext + tag
        } catch {
            throw SessionCipherError(error.reason == .outOfMemory ? error.description : "encryption failed")
        }
    }

    public func unseal(_ sealed: [UInt8], associatedData: [UInt8]) throws -> [UInt8] {
        let overhead = 1 + Self.nonceLength + Self.tagLength
        guard sealed.count >= overhead, sealed[0] == Self.version else { throw SessionCipherError("not a sealed session") }
        let nonce = Array(sealed[1...Self.nonceLength])
        let body = Array(sealed[(1 + Self.nonceLength)..<(sealed.count - Self.tagLength)])
        let tag = Array(sealed.suffix(Self.tagLength))
        do {
            return try cipher.open(body, tag: tag, nonce: nonce, associatedData: associatedData)
        } catch {
            // A changed byte, another key or another row's data all fail authentication.
            switch error.reason {
            case .notAuthentic: throw SessionCipherError("the sealed session does not authenticate")
            case .outOfMemory: throw SessionCipherError(error.description)
            default: throw SessionCipherError("decryption failed")
            }
        }
    }
}
