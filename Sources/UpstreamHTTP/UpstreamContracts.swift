import FoundationEssentials
import GatewaySupport

// The two seams every upstream tool (Power BI, customer backends) goes through:
// an HTTP client and a token broker. Tools depend on these protocols only, so unit
// tests can drive them with fakes and the process wires in the libcurl and Entra versions.

/// One HTTP request to an upstream service.
public struct UpstreamRequest: Sendable {
    public var method: String
    public var url: String
    /// Header names as they should be sent; never log the values (they carry tokens).
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// A retry may repeat it. Defaults to true for GET, HEAD, PUT, DELETE and OPTIONS.
    public var idempotent: Bool
    /// Overrides the client's total timeout for this one request.
    public var timeoutSeconds: Double?
    /// Connect only to these addresses for the URL's host, as the caller resolved and checked them
    /// (SSRF protection: the name cannot resolve elsewhere between the check and the connection).
    /// Empty: the system resolver decides.
    public var pinnedAddresses: [String]

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8] = [],
                idempotent: Bool? = nil, timeoutSeconds: Double? = nil, pinnedAddresses: [String] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.idempotent = idempotent ?? ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"].contains(method)
        self.timeoutSeconds = timeoutSeconds
        self.pinnedAddresses = pinnedAddresses
    }
}

/// What came back. Header names are lower-cased.
public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Wall time including retries.
    public var elapsedSeconds: Double

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], elapsedSeconds: Double = 0) {
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsedSeconds = elapsedSeconds
    }

    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0 == n }?.1
    }

    /// `Retry-After` as whole seconds (delta-seconds or an HTTP date), if present and sane.
    public var retryAfterSeconds: Int? {
        guard let v = header("retry-after")?.trimmingASCIISpaces() else { return nil }
        if let s = Int(v), s >= 0 { return s }
        guard let date = HTTPDate.parse(v) else { return nil }
        return max(0, Int((date - Date().timeIntervalSince1970).rounded(.up)))
    }
}

/// Why no response arrived. Messages name the host, never a header value or body.
public enum UpstreamError: Error, CustomStringConvertible, Sendable {
    case invalidURL(String)
    /// DNS failure, refused or unreachable.
    case connect(host: String, detail: String)
    /// Certificate or handshake failure; verification is never switched off.
    case tls(host: String, detail: String)
    case timeout(host: String, seconds: Double)
    case responseTooLarge(host: String, limit: Int)
    case transport(host: String, detail: String)

    public var description: String {
        switch self {
        case .invalidURL(let u): return "invalid upstream URL \(u)"
        case .connect(let h, let d): return "cannot connect to \(h): \(d)"
        case .tls(let h, let d): return "TLS failure talking to \(h): \(d)"
        case .timeout(let h, let s): return "\(h) did not answer within \(Int(s.rounded(.up))) s"
        case .responseTooLarge(let h, let l): return "the answer from \(h) is larger than \(l) bytes"
        case .transport(let h, let d): return "error talking to \(h): \(d)"
        }
    }
}

/// Blocking HTTP, safe to call from any worker thread.
public protocol HTTPClient: Sendable {
    func send(_ request: UpstreamRequest) throws -> UpstreamResponse
}

/// A token the gateway's own confidential client obtained for an upstream resource.
public struct BrokeredToken: Sendable {
    public var accessToken: String
    /// Unix seconds.
    public var expiresAt: Double
    public init(accessToken: String, expiresAt: Double) {
        self.accessToken = accessToken
        self.expiresAt = expiresAt
    }
}

/// What to ask the token broker for.
public struct TokenRequest: Sendable {
    public enum Grant: Sendable {
        /// On-Behalf-Of: exchange the caller's verified incoming token. `userKey` ("tid/oid")
        /// and a digest of the assertion key the cache; the assertion itself is never stored or logged.
        case onBehalfOf(userAssertion: String, userKey: String)
        /// Client credentials: the gateway acts as itself in `tenantId`.
        case clientCredentials
    }
    public var tenantId: String
    public var scopes: [String]
    public var grant: Grant
    public init(tenantId: String, scopes: [String], grant: Grant) {
        self.tenantId = tenantId
        self.scopes = scopes
        self.grant = grant
    }
}

/// Token failures, worded for the person who has to fix them.
public enum TokenBrokerError: Error, CustomStringConvertible, Sendable {
    /// AADSTS65001 and friends: an admin must grant `scopes` to the gateway's app.
    case consentRequired(scopes: [String], detail: String)
    /// Conditional Access or MFA wants the user back at Entra; `claims` is the challenge to relay.
    case interactionRequired(claims: String?, detail: String)
    /// An app-only caller has no user to act for.
    case delegatedAccessNeedsUser
    /// No usable client secret or certificate.
    case credentialUnavailable(String)
    /// Entra refused (invalid_grant, invalid_client, …): `code` is the OAuth error code.
    case rejected(code: String, detail: String)
    /// The token endpoint could not be reached or failed (network, 5xx, timeout).
    case unavailable(String)

    public var description: String {
        switch self {
        case .consentRequired(let scopes, let d):
            return "An administrator must grant consent for \(scopes.joined(separator: " ")) to this server's app registration (\(d))"
        case .interactionRequired(_, let d): return "Sign-in needs further interaction (\(d))"
        case .delegatedAccessNeedsUser: return "This tool acts on behalf of a user; an app-only token cannot use it"
        case .credentialUnavailable(let d): return "The server's client credential is unavailable: \(d)"
        case .rejected(let code, let d): return "Entra ID refused the token request (\(code)): \(d)"
        case .unavailable(let d): return "Entra ID token endpoint unavailable: \(d)"
        }
    }
}

/// Gets tokens for upstream resources; implementations cache them until shortly before expiry.
public protocol TokenBroker: Sendable {
    func token(_ request: TokenRequest) throws -> BrokeredToken
}
