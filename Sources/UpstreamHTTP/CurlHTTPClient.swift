import CCurl
import FoundationEssentials
import Glibc
import GatewaySupport

/// Limits and trust settings for upstream HTTP.
public struct CurlHTTPClientOptions: Sendable {
    public var connectTimeoutSeconds: Double = 5
    /// Budget for one `send`, retries and their waits included.
    public var totalTimeoutSeconds: Double = 30
    public var maxResponseBytes: Int = 16 << 20
    /// A CA bundle to trust instead of the system store. Verification itself is never switched off.
    public var caBundlePath: String?
    /// Permits plain `http://` URLs: only for tests against local fakes.
    public var allowInsecureHTTPForTesting = false
    /// Extra attempts for idempotent requests after a connect error, a 5xx or a 429.
    public var maxRetries = 2
    /// The longest single wait between attempts, whatever `Retry-After` asks for.
    public var maxRetryWaitSeconds: Double = 10
    /// The gateway's clients name its version too (`CurlHTTPClientOptions.gateway`).
    public var userAgent = "mcp-fcgi"

    public init() {}
}

/// `HTTPClient` on libcurl, the one transport of the process: the upstream clients and the
/// key fetcher (`CurlHTTPFetcher`) both run on it. Easy handles live in a small pool and are
/// reused, so each keeps its connections (keep-alive), TLS sessions and DNS cache across requests.
/// Proxies come from the standard environment variables (libcurl's default).
public final class CurlHTTPClient: HTTPClient, @unchecked Sendable {
    public let options: CurlHTTPClientOptions
    private let poolLock = Lock()
    private var idle: [UnsafeMutableRawPointer] = []
    /// Enough for every worker thread of a busy process; extra handles are freed after use.
    private let maxIdle = 64

    public init(options: CurlHTTPClientOptions = CurlHTTPClientOptions()) {
        self.options = options
    }

    deinit { for h in idle { mcp_curl_easy_cleanup(h) } }


    public func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
        let lower = request.url.lowercased()
        guard lower.hasPrefix("https://") || (options.allowInsecureHTTPForTesting && lower.hasPrefix("http://")),
              let host = Self.host(of: request.url) else {
            throw UpstreamError.invalidURL(Self.redactedURL(request.url))
        }
        let started = Self.now()
        let budget = min(request.timeoutSeconds ?? options.totalTimeoutSeconds, options.totalTimeoutSeconds)
        let deadline = started + budget
        var attempt = 0
        while true {
            let remaining = deadline - Self.now()
            guard remaining > 0.001 else { throw UpstreamError.timeout(host: host, seconds: budget) }
            let outcome: Result<UpstreamResponse, UpstreamError>
            do { outcome = .success(try perform(request, host: host, timeout: remaining)) } catch let e as UpstreamError {
                outcome = .failure(e)
            }
            attempt += 1
            guard request.idempotent, attempt <= options.maxRetries, let wait = retryWait(outcome, attempt: attempt),
                  Self.now() + wait < deadline - 0.05 else {
                switch outcome {
                case .success(var r):
                    r.elapsedSeconds = Self.now() - started
                    return r
                case .failure(let e):
                    if case .timeout = e { throw UpstreamError.timeout(host: host, seconds: budget) }
                    throw e
                }
            }
            if wait > 0 { whileBlocked { sleepNanoseconds(UInt64(wait * 1e9)) } }
        }
    }

    /// How long to wait before trying again, or nil when this outcome is final.
    private func retryWait(_ outcome: Result<UpstreamResponse, UpstreamError>, attempt: Int) -> Double? {
        let backoff = min(options.maxRetryWaitSeconds, 0.2 * Double(1 << (attempt - 1))) * Double.random(in: 0.5...1.0)
        switch outcome {
        case .failure(.connect): return backoff
        case .failure: return nil
        case .success(let r):
            guard r.status == 429 || (500...599).contains(r.status) && r.status != 501 else { return nil }
            if let after = r.retryAfterSeconds {
                // Waiting longer than allowed would only fail later: hand the answer back now.
                return Double(after) <= options.maxRetryWaitSeconds ? Double(after) : nil
            }
            return backoff
        }
    }

    // MARK: - One attempt

    private func checkout() -> UnsafeMutableRawPointer? {
        poolLock.lock()
        let h = idle.popLast()
        poolLock.unlock()
        if let h {
            // Forgets the options of the last request; keeps live connections and caches.
            mcp_curl_easy_reset(h)
            return h
        }
        return mcp_curl_easy_init()
    }

    private func checkin(_ h: UnsafeMutableRawPointer) {
        poolLock.lock()
        if idle.count < maxIdle {
            idle.append(h)
            poolLock.unlock()
        } else {
            poolLock.unlock()
            mcp_curl_easy_cleanup(h)
        }
    }

    private func perform(_ request: UpstreamRequest, host: String, timeout: Double) throws -> UpstreamResponse {
        // A pinned request gets a handle of its own, used once: a pooled one could reuse a connection
        // to another address of the same name, and would keep the pin in its DNS cache.
        let pinned = !request.pinnedAddresses.isEmpty
        guard let h = pinned ? mcp_curl_easy_init() : checkout() else {
            throw UpstreamError.transport(host: host, detail: mcp_curl_load_error().map { String(cString: $0) } ?? "curl_easy_init failed")
        }
        var reusable = !pinned
        defer { if reusable { checkin(h) } else { mcp_curl_easy_cleanup(h) } }
        let sink = CurlResponseSink(limit: options.maxResponseBytes)
        let context = Unmanaged.passRetained(sink)
        defer { context.release() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { mcp_curl_slist_free_all(headerList) }
        for (name, value) in request.headers {
            // A header with a line break could smuggle another header or request.
            guard !name.contains(where: { $0.isNewline }), !value.contains(where: { $0.isNewline }) else {
                throw UpstreamError.transport(host: host, detail: "header \(name) holds a line break")
            }
            headerList = mcp_curl_slist_append(headerList, "\(name): \(value)")
        }
        // No 100-continue round trip before bodies.
        headerList = mcp_curl_slist_append(headerList, "Expect:")

        let started = Self.now()
        var ok = mcp_curl_setopt_string(h, CURLOPT_URL, request.url) == CURLE_OK
        // https only, no redirects, certificate and host checks on, timeouts, size cap (CCurl.h).
        let totalMs = max(1, Int(timeout * 1000))
        ok = ok && mcp_curl_set_safe_defaults(h, options.allowInsecureHTTPForTesting ? 1 : 0, options.caBundlePath,
                                              min(totalMs, Int(options.connectTimeoutSeconds * 1000)), totalMs,
                                              options.maxResponseBytes, options.userAgent) == CURLE_OK
        ok = ok && mcp_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1) == CURLE_OK
        ok = ok && mcp_curl_setopt_pointer(h, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(headerList)) == CURLE_OK
        var resolveList: UnsafeMutablePointer<curl_slist>?
        defer { mcp_curl_slist_free_all(resolveList) }
        if pinned {
            if let entry = try Self.resolveEntry(request.url, addresses: request.pinnedAddresses) {
                resolveList = mcp_curl_slist_append(nil, entry)
                ok = ok && mcp_curl_setopt_pointer(h, CURLOPT_RESOLVE, UnsafeMutableRawPointer(resolveList)) == CURLE_OK
            }
            // A proxy would resolve the name itself and connect wherever that leads.
            ok = ok && mcp_curl_setopt_string(h, CURLOPT_NOPROXY, "*") == CURLE_OK
        }
        switch request.method {
        case "GET": ok = ok && mcp_curl_setopt_long(h, CURLOPT_HTTPGET, 1) == CURLE_OK
        case "HEAD": ok = ok && mcp_curl_setopt_long(h, CURLOPT_NOBODY, 1) == CURLE_OK
        default:
            ok = ok && mcp_curl_setopt_long(h, CURLOPT_POST, 1) == CURLE_OK
            ok = ok && mcp_curl_setopt_long(h, CURLOPT_POSTFIELDSIZE, request.body.count) == CURLE_OK
            // COPYPOSTFIELDS copies now, so the Swift buffer need not outlive this call.
            ok = ok && request.body.withUnsafeBytes { raw in
                var empty: UInt8 = 0
                let p = raw.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) } ?? withUnsafeMutablePointer(to: &empty) { UnsafeMutableRawPointer($0) }
                return mcp_curl_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, p) == CURLE_OK
            }
            if request.method != "POST" { ok = ok && mcp_curl_setopt_string(h, CURLOPT_CUSTOMREQUEST, request.method) == CURLE_OK }
        }
        ok = ok && sink.attachBody(to: h, context: context.toOpaque())
        ok = ok && sink.attachHeaders(to: h, context: context.toOpaque())
        guard ok else {
            reusable = false
            throw UpstreamError.transport(host: host, detail: "libcurl rejected an option")
        }

        // The worker's run permit is lent while the upstream answers.
        let code = whileBlocked { mcp_curl_easy_perform(h) }
        if code != CURLE_OK { reusable = false }
        if sink.overflow || code == CURLE_FILESIZE_EXCEEDED { throw UpstreamError.responseTooLarge(host: host, limit: options.maxResponseBytes) }
        switch code {
        case CURLE_OK: break
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            throw UpstreamError.connect(host: host, detail: String(cString: mcp_curl_easy_strerror(code)))
        case CURLE_OPERATION_TIMEDOUT:
            throw UpstreamError.timeout(host: host, seconds: timeout)
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_CRL_BADFILE, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            throw UpstreamError.tls(host: host, detail: String(cString: mcp_curl_easy_strerror(code)))
        default:
            throw UpstreamError.transport(host: host, detail: String(cString: mcp_curl_easy_strerror(code)))
        }
        var status = 0
        _ = mcp_curl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return UpstreamResponse(status: status, headers: sink.headers, body: sink.body, elapsedSeconds: Self.now() - started)
    }

    // MARK: - Helpers

    /// host[:port] of an http(s) URL, for messages; nil when there is none.
    static func host(of url: String) -> String? {
        guard let u = URLComponents(string: url), let h = u.host, !h.isEmpty else { return nil }
        return u.port.map { "\(h):\($0)" } ?? h
    }

    /// libcurl's `CURLOPT_RESOLVE` line `host:port:address[,address]` for the URL's host, or nil when
    /// the host is itself one of the addresses (a literal needs no resolving). Throws when an address
    /// is not an IP address, or the host is a literal that is not among them.
    package static func resolveEntry(_ url: String, addresses: [String]) throws -> String? {
        let parsed = addresses.map(addressBytes)
        // libcurl drops a trailing dot from the host before it looks a name up, so a pin for "h." would not apply.
        guard let (h, port) = hostAndPort(url), !h.hasSuffix("."), !parsed.contains(nil) else {
            throw UpstreamError.invalidURL(redactedURL(url))
        }
        if let literal = addressBytes(h.hasPrefix("[") ? String(h.dropFirst().dropLast()) : h) {
            guard parsed.contains(literal) else { throw UpstreamError.invalidURL(redactedURL(url)) }
            return nil
        }
        let list = zip(addresses, parsed).map { text, bytes in bytes?.count == 16 ? "[\(text)]" : text }
        return "\(h):\(port):\(list.joined(separator: ","))"
    }

    /// The host as libcurl reads it from the URL (as written: Foundation would decode an IDNA name,
    /// and the pin would then name another host than the one connected to) and the port.
    static func hostAndPort(_ url: String) -> (host: String, port: Int)? {
        guard let separator = url.firstRange(of: "://") else { return nil }
        let scheme = url[..<separator.lowerBound].lowercased()
        var authority = url[separator.upperBound...].prefix { !"/?#".contains($0) }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        let hostEnd = authority.hasPrefix("[") ? authority.firstIndex(of: "]").map { authority.index(after: $0) } : authority.firstIndex(of: ":")
        let host = authority[..<(hostEnd ?? authority.endIndex)]
        let portText = authority[(hostEnd ?? authority.endIndex)...].dropFirst()
        guard !host.isEmpty, host.allSatisfy({ $0.isASCII }) else { return nil }
        guard let port = portText.isEmpty ? (scheme == "http" ? 80 : 443) : Int(portText) else { return nil }
        return (String(host), port)
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address in text, or nil.
    static func addressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Scheme and host only: query strings can carry secrets.
    static func redactedURL(_ url: String) -> String {
        guard let u = URLComponents(string: url), let scheme = u.scheme, let h = u.host else { return "(unparseable URL)" }
        return "\(scheme)://\(h)/…"
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// Collects one libcurl transfer's body (aborting past `limit`) and its response headers
/// (lower-cased names, at most 200, reset after a 1xx interim answer).
final class CurlResponseSink {
    private(set) var body: [UInt8] = []
    private(set) var headers: [(String, String)] = []
    let limit: Int
    private(set) var overflow = false

    init(limit: Int) { self.limit = limit }

    /// `context` is this sink, retained by the caller for the transfer.
    func attachBody(to h: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer) -> Bool {
        mcp_curl_setopt_write_callback(h, { ptr, size, count, user in
            let sink = Unmanaged<CurlResponseSink>.fromOpaque(user!).takeUnretainedValue()
            let n = size * count
            if sink.body.count + n > sink.limit { sink.overflow = true; return 0 }  // 0 aborts the transfer
            if let ptr { sink.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: n)) }
            return n
        }) == CURLE_OK && mcp_curl_setopt_pointer(h, CURLOPT_WRITEDATA, context) == CURLE_OK
    }

    func attachHeaders(to h: UnsafeMutableRawPointer, context: UnsafeMutableRawPointer) -> Bool {
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
