import EntraAuth

/// The `HTTPFetching` the token verifier receives: GETs of OpenID discovery and key-set
/// documents on the libcurl transport, within the fetch options' limits. No retries: the key
/// store keeps its own backoff, shared by every process.
public final class CurlHTTPFetcher: HTTPFetching, @unchecked Sendable {
    public let options: HTTPFetchOptions
    private let transport: CurlHTTPClient

    public init(options: HTTPFetchOptions = HTTPFetchOptions()) {
        self.options = options
        var client = CurlHTTPClientOptions()
        client.connectTimeoutSeconds = Double(options.connectTimeoutMilliseconds) / 1000
        client.totalTimeoutSeconds = Double(options.totalTimeoutMilliseconds) / 1000
        client.maxResponseBytes = options.maxResponseBytes
        client.caBundlePath = options.caBundlePath
        client.allowInsecureHTTPForTesting = options.allowInsecureHTTPForTesting
        client.userAgent = options.userAgent
        client.maxRetries = 0
        transport = CurlHTTPClient(options: client)
    }

    public func get(_ url: String) throws -> FetchedResponse {
        guard options.permits(url) else { throw HTTPFetchError.insecureURL }
        do {
            let response = try transport.send(UpstreamRequest(method: "GET", url: url))
            return FetchedResponse(status: response.status, body: response.body)
        } catch let error as UpstreamError {
            switch error {
            case .responseTooLarge: throw HTTPFetchError.responseTooLarge
            case .connect(_, let detail), .tls(_, let detail), .transport(_, let detail): throw HTTPFetchError.transport(detail)
            case .invalidURL, .timeout: throw HTTPFetchError.transport(error.description)
            }
        }
    }
}
