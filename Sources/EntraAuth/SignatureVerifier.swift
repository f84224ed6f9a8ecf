import GatewayCrypto

/// Verifies JWS signatures with the key's bound algorithm.
public enum SignatureVerifier {
    /// True when `signature` is a valid `key.algorithm` signature of `message`.
    public static func verify(signature: [UInt8], message: [UInt8], key: VerificationKey) -> Bool {
        message.withUnsafeBytes { verify(signature: signature, message: $0, key: key) }
    }

    public static func verify(signature: [UInt8], message: ArraySlice<UInt8>, key: VerificationKey) -> Bool {
        message.withUnsafeBytes { verify(signature: signature, message: $0, key: key) }
    }

    public static func verify(signature: [UInt8], message: UnsafeRawBufferPointer, key: VerificationKey) -> Bool {
        key.publicKey.isValidSignature(signature, of: message, scheme: key.algorithm.signatureScheme)
    }
}

extension JWSAlgorithm {
    /// The GatewayCrypto scheme that checks signatures of this algorithm.
    var signatureScheme: SignatureScheme {
        switch self {
        case .rs256: return .rs256
        case .ps256: return .ps256
        case .es256: return .es256
        }
    }
}
