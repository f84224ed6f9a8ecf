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

    public func get(_ url: String) throws -> FetchedResponse {
        guard Self.isAllowed(url, options: options) else { throw HTTPFetchError.insecureURL }
        guard let h = mcp_curl_easy_init() else { throw HTTPFetchError.transport(mcp_curl_load_error().map { String(cString: $0) } ?? "curl_easy_init failed") }
        defer { mcp_curl_easy_cleanup(h) }
        let sink = CurlResponseSink(limit: options.maxResponseBytes)
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }

        var ok = mcp_curl_setopt_string(h, CURLOPT_URL, url) == CURLE_OK
        // https only, no redirects, certificate and host checks on, timeouts, size cap (CCurl.h).
        ok = ok && mcp_curl_set_safe_defaults(h, options.allowInsecureHTTPForTesting ? 1 : 0, options.caBundlePath,
                                              options.connectTimeoutMilliseconds, options.totalTimeoutMilliseconds,
                                              options.maxResponseBytes, options.userAgent) == CURLE_OK
        ok = ok && sink.attachBody(to: h, context: context.toOpaque())
        guard ok else { throw HTTPFetchError.transport("curl option rejected") }

        let code = mcp_curl_easy_perform(h)
        if sink.overflow || code == CURLE_FILESIZE_EXCEEDED { throw HTTPFetchError.responseTooLarge }
        guard code == CURLE_OK else { throw HTTPFetchError.transport(String(cString: mcp_curl_easy_strerror(code))) }
        var status = 0
        _ = mcp_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return FetchedResponse(status: status, body: sink.body)
    }
}

/// Collects one libcurl transfer's body (aborting past `limit`) and, when attached, its
/// response headers (lower-cased names, at most 200, reset after a 1xx interim answer).
/// The key fetcher and the upstream client share it.
public final class CurlResponseSink {
    public private(set) var body: [UInt8] = []
    public private(set) var headers: [(String, String)] = []
    public let limit: Int
    public private(set) var overflow = false

    public init(limit: Int) { self.limit = limit }

    /// `context` is this sink, retained by the caller for the transfer.
    public func attachBody(to h: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer) -> Bool {
        mcp_curl_setopt_write_callback(h, { ptr, size, count, user in
            let sink = Unmanaged<CurlResponseSink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if sink.body.count + n > sink.limit { sink.overflow = true; return 0 }  // 0 aborts the transfer
            if let ptr { sink.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: n)) }
            return n
        }) == CURLE_OK && mcp_curl_setopt_pointer(h, CURLOPT_WRITEDATA, context) == CURLE_OK
    }

    public func attachHeaders(to h: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer) -> Bool {
        mcp_curl_setopt_header_callback(h, { ptr, size, count, user in
            let sink = Unmanaged<CurlResponseSink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            guard let ptr else { return n }
            let line = UnsafeRawBufferPointer(start: ptr, count: n)
            if line.starts(with: Array("HTTP/".utf8)) {
                sink.headers.removeAll()  // a new response (after 1xx): start over
            } else if let colon = line.firstIndex(of: UInt8(ascii: ":")), sink.headers.count < 200 {
                let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
                let isSpace = { (b: UInt8) in b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
                var rest = line[(colon + 1)...]
                while let f = rest.first, isSpace(f) { rest = rest.dropFirst() }
                while let l = rest.last, isSpace(l) { rest = rest.dropLast() }
                let value = String(decoding: rest, as: UTF8.self)
                sink.headers.append((name, value))
            }
            return n
        }) == CURLE_OK && mcp_curl_setopt_pointer(h, CURLOPT_HEADERDATA, context) == CURLE_OK
    }
}
