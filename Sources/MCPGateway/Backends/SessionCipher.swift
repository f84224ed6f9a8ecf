import Foundation
import GatewayCrypto

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
    public static func loadOrCreate(stateDirectory: String) throws -> SessionCipher {
        let path = stateDirectory + "/" + keyFileName
        if let key = try readKey(path) { return try SessionCipher(key: key) }
        guard let fresh = SecureRandom.bytes(keyLength) else { throw SessionCipherError("no randomness for the session key") }
        let temp = "\(path).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SessionCipherError("cannot create \(temp): \(String(cString: strerror(errno)))") }
        defer { unlink(temp) }
        let written = fresh.withUnsafeBytes { write(fd, $0.baseAddress, keyLength) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == keyLength, synced else { throw SessionCipherError("cannot write \(temp): \(String(cString: strerror(errno)))") }
        if link(temp, path) != 0 && errno != EEXIST {
            throw SessionCipherError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        guard let key = try readKey(path) else { throw SessionCipherError("\(path) vanished while starting") }
        return try SessionCipher(key: key)
    }

    private static func readKey(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw SessionCipherError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SessionCipherError("cannot stat \(path)") }
        guard st.st_mode & 0o077 == 0 else {
            throw SessionCipherError("\(path) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        var key = [UInt8](repeating: 0, count: keyLength + 1)
        let n = key.withUnsafeMutableBytes { read(fd, $0.baseAddress, keyLength + 1) }
        guard n == keyLength else { throw SessionCipherError("\(path) must hold exactly 32 bytes") }
        return Array(key.prefix(keyLength))
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
