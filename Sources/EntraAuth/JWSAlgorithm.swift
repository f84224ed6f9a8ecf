/// The asymmetric JWS algorithms this module can verify. `none` and the HMAC
/// family are deliberately not representable, so no policy can allow them.
public enum JWSAlgorithm: String, CaseIterable, Sendable, Hashable {
    case rs256 = "RS256"
    case ps256 = "PS256"
    case es256 = "ES256"

    /// The JWK key type a key must have to be used with this algorithm.
    public var keyType: String {
        switch self {
        case .rs256, .ps256: return "RSA"
        case .es256: return "EC"
        }
    }
}
