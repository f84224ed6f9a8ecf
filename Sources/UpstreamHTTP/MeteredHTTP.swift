import EntraAuth
import FoundationEssentials

/// Where metered upstream calls are counted (the gateway's shared metrics), so this
/// target needs nothing of the gateway's.
public protocol UpstreamObserver: Sendable {
    /// One call to `upstream` took `seconds`; `failed` for transport errors and 5xx answers.
    func observeUpstream(_ upstream: String, seconds: Double, failed: Bool)
    /// Kept for `system_status`: a host and an error kind, never a URL's query or a body.
    func recordUpstreamError(_ upstream: String, _ text: String)
}

/// An upstream HTTP client (`MeteredHTTPClient`) or key fetcher (`MeteredFetcher`) whose every
/// call is timed into the observer; failures (errors and 5xx answers) are also kept, by host and kind only.
public final class MeteredUpstream<Inner>: @unchecked Sendable {
    let inner: Inner
    let upstream: String
    let metrics: UpstreamObserver

    public init(_ inner: Inner, upstream: String, metrics: UpstreamObserver) {
        self.inner = inner
        self.upstream = upstream
        self.metrics = metrics
    }

    func time<R>(_ url: String, status: (R) -> Int, _ call: () throws -> R) throws -> R {
        let started = Date().timeIntervalSince1970
        do {
            let response = try call()
            let code = status(response)
            metrics.observeUpstream(upstream, seconds: Date().timeIntervalSince1970 - started, failed: code >= 500)
            if code >= 500 { metrics.recordUpstreamError(upstream, "HTTP \(code) from \(Self.host(url))") }
            return response
        } catch {
            metrics.observeUpstream(upstream, seconds: Date().timeIntervalSince1970 - started, failed: true)
            metrics.recordUpstreamError(upstream, "\(Self.kind(error)) talking to \(Self.host(url))")
            throw error
        }
    }

    static func host(_ url: String) -> String { URLComponents(string: url)?.host ?? "an invalid URL" }

    /// The failure in a few words: the client's and the fetcher's errors, each by its own cases.
    static func kind(_ error: Error) -> String {
        switch error {
        case let e as UpstreamError:
            switch e {
            case .invalidURL: return "invalid URL"
            case .connect: return "connection failure"
            case .tls: return "TLS failure"
            case .timeout: return "timeout"
            case .responseTooLarge: return "response too large"
            case .transport: return "transport error"
            }
        case let e as HTTPFetchError:
            switch e {
            case .insecureURL: return "insecure URL"
            case .responseTooLarge: return "response too large"
            case .transport: return "transport error"
            case .status(let s): return "HTTP \(s)"
            }
        default: return "error"
        }
    }
}

public typealias MeteredHTTPClient = MeteredUpstream<any HTTPClient>
public typealias MeteredFetcher = MeteredUpstream<any HTTPFetching>

extension MeteredUpstream: HTTPClient where Inner == any HTTPClient {
    public func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
        try time(request.url, status: \.status) { try inner.send(request) }
    }

    /// `client`, timed when there are metrics to record into.
    public static func wrap(_ client: HTTPClient, upstream: String, metrics: UpstreamObserver?) -> HTTPClient {
        metrics.map { MeteredHTTPClient(client, upstream: upstream, metrics: $0) } ?? client
    }
}

extension MeteredUpstream: HTTPFetching where Inner == any HTTPFetching {
    public func get(_ url: String) throws -> FetchedResponse {
        try time(url, status: \.status) { try inner.get(url) }
    }
}
