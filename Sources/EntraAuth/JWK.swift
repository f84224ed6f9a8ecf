import MCPJSON

/// One entry of a JSON Web Key Set, as published (RFC 7517/7518). Only the
/// public parameters are read; private members are ignored.
public struct JWK: Sendable {
    public let keyType: String
    public let keyID: String?
    public let algorithm: String?
    public let use: String?
    /// Entra's v2 key sets attach an issuer (possibly templated with `{tenantid}`).
    public let issuer: String?
    public let n: [UInt8]?
    public let e: [UInt8]?
    public let curve: String?
    public let x: [UInt8]?
    public let y: [UInt8]?

    public init?(_ object: JSONObject) {
        guard let kty = object["kty"]?.stringValue else { return nil }
        func string(_ k: String) -> String? { object[k]?.stringValue }
        func bytes(_ k: String) -> [UInt8]? { string(k).flatMap { Base64.decodeURL(Array($0.utf8)) } }
        keyType = kty
        keyID = string("kid")
        algorithm = string("alg")
        use = string("use")
        issuer = string("issuer")
        n = bytes("n")
        e = bytes("e")
        curve = string("crv")
        x = bytes("x")
        y = bytes("y")
    }

    /// The algorithm this key may be used with: its own `alg`, or the one
    /// algorithm its key type implies. An RSA key without `alg` is RS256 only,
    /// so a PS256 token cannot borrow an RS256 key and vice versa.
    public var boundAlgorithm: JWSAlgorithm? {
        if let algorithm {
            guard let a = JWSAlgorithm(rawValue: algorithm), a.keyType == keyType else { return nil }
            return a
        }
        switch keyType {
        case "RSA": return .rs256
        case "EC": return curve == "P-256" ? .es256 : nil
        default: return nil
        }
    }
}

/// A key set after loading: usable keys by kid, plus kids that were refused and why,
/// so a token naming a refused key gets a precise error instead of "unknown key".
public struct KeySet {
    public private(set) var keys: [String: VerificationKey] = [:]
    public private(set) var refused: [String: TokenVerificationError] = [:]

    public init() {}

    public init(keys: [VerificationKey]) {
        for k in keys where self.keys[k.keyID] == nil { self.keys[k.keyID] = k }
    }

    /// Loads `{"keys":[...]}`. Entries that are not signing keys, have no kid, or
    /// use an unsupported type are skipped; the document itself must be well formed.
    public init(jwksJSON bytes: [UInt8], minimumRSABits: Int = VerificationKey.minimumRSABits) throws {
        let value = try JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 8, maxBytes: 1 << 20, maxStringBytes: 64 << 10))
        try self.init(jwks: value, minimumRSABits: minimumRSABits)
    }

    public init(jwks value: JSONValue, minimumRSABits: Int = VerificationKey.minimumRSABits) throws {
        guard let list = value["keys"]?.arrayValue else { throw AuthConfigurationError("JWKS document has no keys array") }
        for entry in list {
            guard let object = entry.objectValue, let jwk = JWK(object), let kid = jwk.keyID, !kid.isEmpty else { continue }
            if let use = jwk.use, use != "sig" { continue }
            if keys[kid] != nil || refused[kid] != nil { continue }  // first entry wins
            do {
                keys[kid] = try VerificationKey(jwk: jwk, minimumRSABits: minimumRSABits)
            } catch let error as TokenVerificationError {
                refused[kid] = error
            } catch {
                continue
            }
        }
    }

    public var isEmpty: Bool { keys.isEmpty }

    /// The key for `kid`, checked against the token's algorithm.
    public func key(for kid: String, algorithm: JWSAlgorithm) -> Result<VerificationKey, TokenVerificationError>? {
        if let key = keys[kid] {
            return key.algorithm == algorithm ? .success(key) : .failure(.algorithmKeyMismatch)
        }
        if let reason = refused[kid] { return .failure(reason) }
        return nil
    }
}
