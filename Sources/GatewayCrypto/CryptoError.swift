/// Why a GatewayCrypto operation failed. `reason` lets callers word their own errors;
/// `description` never holds key material or input bytes.
package struct CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    package enum Reason: Equatable, Sendable {
        /// OpenSSL could not allocate a context or buffer.
        case outOfMemory
        /// The algorithm, key type or mode is not available in this OpenSSL.
        case unsupported
        /// Input that does not decode, or key material OpenSSL refuses to use.
        case rejected
        /// An RSA public key shorter than the caller's minimum.
        case keyTooSmall
        /// Authenticated decryption found the data, associated data or key changed.
        case notAuthentic
        /// The operation itself failed.
        case failed
    }

    package let reason: Reason
    package let description: String

    init(_ reason: Reason, _ description: String) {
        self.reason = reason
        self.description = description
    }

    static let outOfMemory = CryptoError(.outOfMemory, "out of memory")
}
