import UpstreamHTTP

extension CurlHTTPClientOptions {
    /// The defaults with the gateway's user agent, `mcp-fcgi/<version>`: every upstream client of the gateway starts here.
    static var gateway: CurlHTTPClientOptions {
        var options = CurlHTTPClientOptions()
        options.userAgent = "\(GatewayVersion.name)/\(GatewayVersion.string)"
        return options
    }
}
