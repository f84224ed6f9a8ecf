/// Limits for fetching discovery documents and key sets.
public struct HTTPFetchOptions: Sendable {
    public var connectTimeoutMilliseconds: Int = 5_000
    public var totalTimeoutMilliseconds: Int = 10_000
    public var maxResponseBytes: Int = 512 << 10
    /// A CA bundle to trust instead of the system store (e.g. behind a TLS-inspecting proxy).
    public var caBundlePath: String?
    /// Permits plain `http://` URLs. Only for tests against a local fake server.
    public var allowInsecureHTTPForTesting: Bool = false
    public var userAgent: String = "mcp-fcgi-entra-auth/1"

    public init() {}

    /// True for https URLs, and for http ones when testing allows it.
    public func permits(_ url: String) -> Bool {
        let lower = url.lowercased()
        return lower.hasPrefix("https://") || (allowInsecureHTTPForTesting && lower.hasPrefix("http://"))
    }
}

public struct FetchedResponse: Sendable {
    public let status: Int
    public let body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

public enum HTTPFetchError: Error, Equatable, CustomStringConvertible {
    case insecureURL
    case responseTooLarge
    case transport(String)
    case status(Int)

    public var description: String {
        switch self {
        case .insecureURL: return "refusing a non-https URL"
        case .responseTooLarge: return "response exceeds the size limit"
        case .transport(let m): return "transfer failed: \(m)"
        case .status(let s): return "unexpected HTTP status \(s)"
        }
    }
}

/// Something that can GET a URL: the key store takes one, so the process can hand it the
/// libcurl fetcher (UpstreamHTTP's `CurlHTTPFetcher`) and tests a fake that counts calls.
public protocol HTTPFetching: AnyObject {
    func get(_ url: String) throws -> FetchedResponse
}
