import MCPJSON

/// The protected header fields this module reads. Keys named by the token
/// itself (`jku`, `x5u`, `jwk`, `x5c`) are never read: trusting them would let
/// the token choose the key that verifies it.
public struct JOSEHeader: Sendable {
    public let algorithm: JWSAlgorithm
    public let keyID: String
    public let type: String?
}

/// A strictly parsed JWS in compact serialisation. Parsing checks structure and
/// the header policy only; the signature and claims are checked later.
public struct CompactJWS {
    public let header: JOSEHeader
    /// `base64url(header) '.' base64url(payload)`, the bytes that were signed.
    public let signingInput: ArraySlice<UInt8>
    public let payloadBytes: [UInt8]
    public let signature: [UInt8]

    /// Small limits: a token has no business nesting deeply.
    static let jsonLimits = JSONLimits(maxDepth: 8, maxBytes: 16 << 10, maxStringBytes: 8 << 10)

    public static let defaultMaxBytes = 16 << 10

    public init(_ token: String, maxBytes: Int = CompactJWS.defaultMaxBytes,
                allowedAlgorithms: Set<JWSAlgorithm>) throws {
        try self.init(bytes: Array(token.utf8), maxBytes: maxBytes, allowedAlgorithms: allowedAlgorithms)
    }

    public init(bytes: [UInt8], maxBytes: Int = CompactJWS.defaultMaxBytes,
                allowedAlgorithms: Set<JWSAlgorithm>) throws {
        guard bytes.count <= maxBytes else { throw TokenVerificationError.tokenTooLarge }
        // Find exactly two dots; anything else is not a JWS (a JWE has five parts).
        var dots: [Int] = []
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: ".") {
            dots.append(i)
            if dots.count > 2 { throw TokenVerificationError.malformedToken(.segmentCount) }
        }
        guard dots.count == 2 else { throw TokenVerificationError.malformedToken(.segmentCount) }
        let headerText = bytes[0..<dots[0]]
        let payloadText = bytes[(dots[0] + 1)..<dots[1]]
        let signatureText = bytes[(dots[1] + 1)...]
        guard !headerText.isEmpty, !payloadText.isEmpty else {
            throw TokenVerificationError.malformedToken(.segmentCount)
        }
        // Base64.decodeURL rejects '=', whitespace and any character outside the url alphabet.
        guard let headerBytes = Base64.decodeURL(headerText) else {
            throw TokenVerificationError.malformedToken(.invalidBase64URL)
        }
        guard let headerValue = try? JSONParser.parse(headerBytes, limits: Self.jsonLimits),
              case .object(let header) = headerValue
        else { throw TokenVerificationError.malformedToken(.headerNotJSONObject) }
        // The header policy goes first, so `alg: none` with an empty signature
        // is reported as the unsupported algorithm it is.
        self.header = try Self.checkHeader(header, allowedAlgorithms: allowedAlgorithms)

        guard !signatureText.isEmpty else { throw TokenVerificationError.malformedToken(.emptySignature) }
        guard let payload = Base64.decodeURL(payloadText), let signature = Base64.decodeURL(signatureText) else {
            throw TokenVerificationError.malformedToken(.invalidBase64URL)
        }
        self.signingInput = bytes[0..<dots[1]]
        self.payloadBytes = payload
        self.signature = signature
    }

    /// Parses the payload as a JSON object (after the signature has been checked).
    public func claims() throws -> JSONObject {
        guard let value = try? JSONParser.parse(payloadBytes, limits: Self.jsonLimits),
              case .object(let object) = value
        else { throw TokenVerificationError.malformedToken(.payloadNotJSONObject) }
        return object
    }

    private static func checkHeader(_ header: JSONObject, allowedAlgorithms: Set<JWSAlgorithm>) throws -> JOSEHeader {
        // Graph tokens are signed over a transformed nonce; say so instead of "bad signature".
        if header.contains("nonce") { throw TokenVerificationError.graphToken }
        // RFC 7515 4.1.11: a recipient must reject extensions it does not understand; we understand none.
        if header.contains("crit") { throw TokenVerificationError.criticalHeaderNotSupported }
        guard let algValue = header["alg"] else { throw TokenVerificationError.unsupportedAlgorithm }
        guard let algName = algValue.stringValue else { throw TokenVerificationError.malformedToken(.invalidHeaderField) }
        guard let alg = JWSAlgorithm(rawValue: algName), allowedAlgorithms.contains(alg) else {
            throw TokenVerificationError.unsupportedAlgorithm
        }
        guard let kidValue = header["kid"] else { throw TokenVerificationError.missingKeyID }
        guard let kid = kidValue.stringValue else { throw TokenVerificationError.malformedToken(.invalidHeaderField) }
        guard !kid.isEmpty else { throw TokenVerificationError.missingKeyID }
        var type: String?
        if let t = header["typ"] {
            guard let s = t.stringValue else { throw TokenVerificationError.malformedToken(.invalidHeaderField) }
            type = s
        }
        return JOSEHeader(algorithm: alg, keyID: kid, type: type)
    }
}
