import MCPJSON

/// What a claims check sees: the verified payload, the signing key's own issuer
/// (Entra key sets bind keys to issuers) and the verifier's clock reading.
public struct TokenClaims {
    public let claims: JSONObject
    public let signingKeyIssuer: String?
    public let now: Int64

    public init(claims: JSONObject, signingKeyIssuer: String? = nil, now: Int64) {
        self.claims = claims
        self.signingKeyIssuer = signingKeyIssuer
        self.now = now
    }
}

/// One small, separately testable rule about a token's claims
/// (the shape of swift-certificates' VerifierPolicy). Returns nil when satisfied.
public protocol ClaimsCheck {
    func check(_ token: TokenClaims) -> TokenVerificationError?
}

/// An ordered list of checks; the first failure is the verdict.
public struct ClaimsPolicy {
    public var checks: [ClaimsCheck]
    /// How long past `exp` a token is still accepted (also bounds the token cache).
    public let clockSkewSeconds: Int64

    public init(checks: [ClaimsCheck], clockSkewSeconds: Int64) {
        self.checks = checks
        self.clockSkewSeconds = clockSkewSeconds
    }

    public func evaluate(_ token: TokenClaims) -> TokenVerificationError? {
        for c in checks { if let failure = c.check(token) { return failure } }
        return nil
    }

    /// Entra's rules: issuer templated with the token's tid, tenant allow-list,
    /// audience, lifetime, and which token kinds are accepted. Audience comes
    /// before lifetime so a client holding a token for another API is told so,
    /// rather than refreshing the same wrong token forever.
    public static func entra(issuerTemplates: [String], allowedTenants: [String], acceptAnyTenant: Bool,
                             audiences: [String], acceptDelegated: Bool, acceptAppOnly: Bool,
                             clockSkewSeconds: Int64) -> ClaimsPolicy {
        ClaimsPolicy(checks: [
            IssuerTenantCheck(issuerTemplates: issuerTemplates, allowedTenants: allowedTenants, acceptAnyTenant: acceptAnyTenant),
            AudienceCheck(audiences: audiences),
            LifetimeCheck(clockSkewSeconds: clockSkewSeconds),
            TokenKindCheck(acceptDelegated: acceptDelegated, acceptAppOnly: acceptAppOnly),
        ], clockSkewSeconds: clockSkewSeconds)
    }
}

/// `exp` required; `nbf` and `iat` must not lie in the future, all with the same leeway.
public struct LifetimeCheck: ClaimsCheck {
    public let clockSkewSeconds: Int64
    public init(clockSkewSeconds: Int64) { self.clockSkewSeconds = clockSkewSeconds }

    public func check(_ token: TokenClaims) -> TokenVerificationError? {
        guard let expValue = token.claims["exp"] else { return .missingClaim(.exp) }
        guard let exp = Self.seconds(expValue) else { return .malformedToken(.invalidClaim) }
        if token.now >= exp + clockSkewSeconds { return .expired }
        for key in ["nbf", "iat"] {
            guard let v = token.claims[key] else { continue }
            guard let t = Self.seconds(v) else { return .malformedToken(.invalidClaim) }
            if t > token.now + clockSkewSeconds { return .notYetValid }
        }
        return nil
    }

    /// NumericDate: a JSON number of seconds; fractions are truncated.
    static func seconds(_ v: JSONValue) -> Int64? {
        guard let d = v.numberValue, d.isFinite, abs(d) < 1e15 else { return nil }
        return Int64(d)
    }
}

/// `iss` must be one of the issuer templates with `{tenantid}` replaced by the
/// token's `tid`; `tid` must be a GUID on the allow-list (unless any tenant is
/// explicitly accepted); and a key bound to an issuer may only sign for that issuer.
public struct IssuerTenantCheck: ClaimsCheck {
    public static let placeholder = "{tenantid}"
    public let issuerTemplates: [String]
    public let allowedTenants: Set<String>
    public let acceptAnyTenant: Bool

    public init(issuerTemplates: [String], allowedTenants: [String], acceptAnyTenant: Bool) {
        self.issuerTemplates = issuerTemplates
        self.allowedTenants = Set(allowedTenants.map { $0.lowercased() })
        self.acceptAnyTenant = acceptAnyTenant
    }

    public func check(_ token: TokenClaims) -> TokenVerificationError? {
        guard let issValue = token.claims["iss"] else { return .missingClaim(.iss) }
        guard let iss = issValue.stringValue else { return .malformedToken(.invalidClaim) }
        // Which template does iss fit, and what does it name as the tenant?
        var segment: Substring?
        for template in issuerTemplates {
            if let s = Self.tenantSegment(of: iss, template: template) { segment = s; break }
        }
        guard let segment else { return .invalidIssuer }
        guard let tidValue = token.claims["tid"] else { return .missingClaim(.tid) }
        guard let tid = tidValue.stringValue else { return .malformedToken(.invalidClaim) }
        guard Self.isGUID(tid), segment == tid else { return .tenantIssuerMismatch }
        if !acceptAnyTenant && !allowedTenants.contains(tid.lowercased()) { return .tenantNotAllowed }
        if let keyIssuer = token.signingKeyIssuer {
            // Entra's common keys say {tenantid}; fixed issuers (e.g. the consumer tenant)
            // must match. A v1 token's key still carries the v2 form, so any template counts.
            let bound = keyIssuer.replacing(Self.placeholder, with: tid)
            let expected = issuerTemplates.map { $0.replacing(Self.placeholder, with: tid) }
            if bound != iss && !expected.contains(bound) { return .invalidIssuer }
        }
        return nil
    }

    static func tenantSegment(of iss: String, template: String) -> Substring? {
        guard let range = placeholderRange(in: template) else { return iss == template ? Substring("") : nil }
        let prefix = template[..<range.lowerBound], suffix = template[range.upperBound...]
        guard iss.count > prefix.count + suffix.count, iss.hasPrefix(prefix), iss.hasSuffix(suffix) else { return nil }
        let middle = iss.dropFirst(prefix.count).dropLast(suffix.count)
        return middle.contains("/") ? nil : middle
    }

    /// Where the ASCII placeholder first stands in `template`, found by its UTF-8 bytes: the
    /// standard library's `firstRange(of:)` builds a skip table (a `[Character: Int]` and a
    /// `Set<UInt8>`) on every call, about 0.4 M instructions the first time in a process.
    static func placeholderRange(in template: String) -> Range<String.Index>? {
        let bytes = template.utf8, wanted = placeholder.utf8
        var start = bytes.startIndex
        while let end = bytes.index(start, offsetBy: wanted.count, limitedBy: bytes.endIndex) {
            if bytes[start..<end].elementsEqual(wanted) { return start..<end }
            start = bytes.index(after: start)
        }
        return nil
    }

    /// 8-4-4-4-12 hex digits, as Entra writes tenant IDs.
    public static func isGUID<S: StringProtocol>(_ s: S) -> Bool {
        let u = Array(s.utf8)
        guard u.count == 36 else { return false }
        for (i, c) in u.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if c != UInt8(ascii: "-") { return false }
            } else if !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) {
                return false
            }
        }
        return true
    }
}

/// `aud` (a string or an array of strings) must name one of our audiences.
public struct AudienceCheck: ClaimsCheck {
    public let audiences: Set<String>
    public init(audiences: [String]) { self.audiences = Set(audiences) }

    public func check(_ token: TokenClaims) -> TokenVerificationError? {
        guard let aud = token.claims["aud"] else { return .missingClaim(.aud) }
        switch aud {
        case .string(let s):
            return audiences.contains(s) ? nil : .invalidAudience
        case .array(let list):
            var found = false
            for item in list {
                guard let s = item.stringValue else { return .malformedToken(.invalidClaim) }
                if audiences.contains(s) { found = true }
            }
            return found ? nil : .invalidAudience
        default:
            return .malformedToken(.invalidClaim)
        }
    }
}

/// Delegated (user) and app-only tokens are each accepted or refused by policy.
public struct TokenKindCheck: ClaimsCheck {
    public let acceptDelegated: Bool
    public let acceptAppOnly: Bool
    public init(acceptDelegated: Bool, acceptAppOnly: Bool) {
        self.acceptDelegated = acceptDelegated
        self.acceptAppOnly = acceptAppOnly
    }

    public func check(_ token: TokenClaims) -> TokenVerificationError? {
        if let scp = token.claims["scp"], scp.stringValue == nil { return .malformedToken(.invalidClaim) }
        if Principal.isAppOnly(token.claims) {
            return acceptAppOnly ? nil : .appOnlyTokenNotAccepted
        }
        return acceptDelegated ? nil : .delegatedTokenNotAccepted
    }
}
