import CCurl

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
}

public struct FetchedResponse: Sendable {
    public let status: Int
    public let body: [UInt8]
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

/// Something that can GET a URL; the key store takes one so tests can count calls.
public protocol HTTPFetching: AnyObject {
    func get(_ url: String) throws -> FetchedResponse
}

/// GET with libcurl: TLS verification always on, no redirects, bounded time and size.
public final class CurlHTTPFetcher: HTTPFetching, @unchecked Sendable {
    public let options: HTTPFetchOptions

    public init(options: HTTPFetchOptions = HTTPFetchOptions()) {
        self.options = options
    }


    /// True for https URLs, and for http ones when testing allows it.
    public static func isAllowed(_ url: String, options: HTTPFetchOptions) -> Bool {
        let lower = url.lowercased()
        return lower.hasPrefix("https://") || (options.allowInsecureHTTPForTesting && lower.hasPrefix("http://"))
    }

    private final class Sink {
        var body: [UInt8] = []
        let limit: Int
        var overflow = false
        init(limit: Int) { self.limit = limit }
    }

    public func get(_ url: String) throws -> FetchedResponse {
        guard Self.isAllowed(url, options: options) else { throw HTTPFetchError.insecureURL }
        guard let h = mcp_curl_easy_init() else { throw HTTPFetchError.transport(mcp_curl_load_error().map { String(cString: $0) } ?? "curl_easy_init failed") }
        defer { mcp_curl_easy_cleanup(h) }
        let sink = Sink(limit: options.maxResponseBytes)
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }

        var ok = mcp_curl_setopt_string(h, CURLOPT_URL, url) == CURLE_OK
        // https only, no redirects, certificate and host checks on, timeouts, size cap (CCurl.h).
        ok = ok && mcp_curl_set_safe_defaults(h, options.allowInsecureHTTPForTesting ? 1 : 0, options.caBundlePath,
                                              options.connectTimeoutMilliseconds, options.totalTimeoutMilliseconds,
                                              options.maxResponseBytes, options.userAgent) == CURLE_OK
        ok = ok && mcp_curl_setopt_write_callback(h, { ptr, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if sink.body.count + n > sink.limit { sink.overflow = true; return 0 }  // 0 aborts the transfer
            if let ptr { sink.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: n)) }
            return n
        }) == CURLE_OK
        ok = ok && mcp_curl_setopt_pointer(h, CURLOPT_WRITEDATA, context.toOpaque()) == CURLE_OK
        guard ok else { throw HTTPFetchError.transport("curl option rejected") }

        let code = mcp_curl_easy_perform(h)
        if sink.overflow || code == CURLE_FILESIZE_EXCEEDED { throw HTTPFetchError.responseTooLarge }
        guard code == CURLE_OK else { throw HTTPFetchError.transport(String(cString: mcp_curl_easy_strerror(code))) }
        var status = 0
        _ = mcp_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return FetchedResponse(status: status, body: sink.body)
    }
}
