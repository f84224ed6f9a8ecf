import FoundationEssentials
import UpstreamHTTP

extension CurlHTTPClientOptions {
    /// The defaults with the gateway's user agent, `mcp-fcgi/<version>`: every upstream client of the gateway starts here.
    static var gateway: CurlHTTPClientOptions {
        var options = CurlHTTPClientOptions()
        options.userAgent = "\(GatewayVersion.name)/\(GatewayVersion.string)"
        return options
    }
}

extension EntraTokenBroker {
    /// The instance's one broker, shared by the Power BI and backend tools: the `credential`
    /// section's client (its files read here, once), one token cache. It asks
    /// `credential.authority`, else `auth.authority`; Power BI asks its cloud's login host
    /// through `atAuthority`. nil when no tool calls upstreams or no credential is configured.
    static func forInstance(_ config: GatewayConfig, metrics: GatewayMetrics?) throws -> EntraTokenBroker? {
        guard config.powerBI != nil || !config.backends.isEmpty, let credential = config.credential else { return nil }
        var options = CurlHTTPClientOptions.gateway
        options.totalTimeoutSeconds = Double(credential.timeoutSeconds)
        options.caBundlePath = credential.caBundle
        options.allowInsecureHTTPForTesting = credential.allowInsecureHTTPForTesting
        return try forCredential(credential, of: config,
                                 http: MeteredHTTPClient.wrap(CurlHTTPClient(options: options), upstream: "entra_token", metrics: metrics))
    }

    /// A broker for the instance's `credential` section (its secret or certificate read here) that
    /// asks `credential.authority`, else `fallbackAuthority`, else `auth.authority`, through `http`.
    /// The instance's broker passes no fallback; `doctor` passes Power BI's login host, which its
    /// token check asks for when Power BI is configured.
    static func forCredential(_ credential: CredentialConfig, of config: GatewayConfig, fallbackAuthority: String? = nil,
                              http: HTTPClient,
                              environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EntraTokenBroker {
        EntraTokenBroker(clientId: credential.clientId, authority: credential.authority ?? fallbackAuthority ?? config.auth.authority,
                         credential: try ClientCredential.load(credential, environment: environment), http: http)
    }
}
