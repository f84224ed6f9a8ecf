import EntraAuth
import Foundation
import UpstreamHTTP

/// Times every call of an upstream HTTP client into the shared histograms; failures
/// (transport errors and 5xx) are also kept, by host and kind only, for `system_status`.
public struct MeteredHTTPClient: HTTPClient {
    let inner: HTTPClient
    let upstream: String
    let metrics: GatewayMetrics

    public init(_ inner: HTTPClient, upstream: String, metrics: GatewayMetrics) {
        self.inner = inner
        self.upstream = upstream
        self.metrics = metrics
    }

    /// `client`, timed when there are metrics to record into.
    public static func wrap(_ client: HTTPClient, upstream: String, metrics: GatewayMetrics?) -> HTTPClient {
        metrics.map { MeteredHTTPClient(client, upstream: upstream, metrics: $0) } ?? client
    }

    public func send(_ request: UpstreamRequest) throws -> UpstreamResponse {
        try metrics.timeUpstream(upstream, url: request.url, status: \.status, describe: Self.kind) { try inner.send(request) }
    }

    static func host(_ url: String) -> String { URLComponents(string: url)?.host ?? "an invalid URL" }

    static func kind(_ error: Error) -> String {
        guard let e = error as? UpstreamError else { return "error" }
        switch e {
        case .invalidURL: return "invalid URL"
        case .connect: return "connection failure"
        case .tls: return "TLS failure"
        case .timeout: return "timeout"
        case .responseTooLarge: return "response too large"
        case .transport: return "transport error"
        }
    }
}

/// The same for the key fetcher (OpenID discovery and JWKS).
public final class MeteredFetcher: HTTPFetching, @unchecked Sendable {
    let inner: HTTPFetching
    let upstream: String
    let metrics: GatewayMetrics

    public init(_ inner: HTTPFetching, upstream: String, metrics: GatewayMetrics) {
        self.inner = inner
        self.upstream = upstream
        self.metrics = metrics
    }

    public func get(_ url: String) throws -> FetchedResponse {
        try metrics.timeUpstream(upstream, url: url, status: \.status, describe: Self.kind) { try inner.get(url) }
    }

    static func kind(_ error: Error) -> String {
        guard let e = error as? HTTPFetchError else { return "error" }
        switch e {
        case .insecureURL: return "insecure URL"
        case .responseTooLarge: return "response too large"
        case .transport: return "transport error"
        case .status(let s): return "HTTP \(s)"
        }
    }
}

extension GatewayMetrics {
    /// Times one upstream call into the histogram; transport errors and 5xx answers are also
    /// kept (by host and kind only, never a body) for `system_status`.
    func timeUpstream<R>(_ upstream: String, url: String, status: (R) -> Int, describe: (Error) -> String,
                         _ call: () throws -> R) throws -> R {
        let started = Date().timeIntervalSince1970
        do {
            let response = try call()
            let code = status(response)
            observeUpstream(upstream, seconds: Date().timeIntervalSince1970 - started, failed: code >= 500)
            if code >= 500 { recordUpstreamError(upstream, "HTTP \(code) from \(MeteredHTTPClient.host(url))") }
            return response
        } catch {
            observeUpstream(upstream, seconds: Date().timeIntervalSince1970 - started, failed: true)
            recordUpstreamError(upstream, "\(describe(error)) talking to \(MeteredHTTPClient.host(url))")
            throw error
        }
    }
}
