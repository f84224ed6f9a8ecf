import GatewaySupport

extension GatewayConfig.TrustedProxy {
    /// Whether the peer (REMOTE_ADDR) is one of the configured authenticating proxies.
    public func trusts(_ request: HTTPRequest) -> Bool {
        guard enabled, let peer = request.remoteAddress else { return false }
        return NetworkRange.any(sources, contains: peer)
    }
}

/// First stage of an instance: removes the identity headers a trusted proxy would assert
/// from a request that did not come from one, and from the proxy's own requests the headers
/// it does not set (its client may have sent them through it), so no later stage can read a
/// forged identity. (The router before it has read nothing but the path.)
public struct StripUntrustedAssertions: Stage {
    let proxy: GatewayConfig.TrustedProxy

    public init(proxy: GatewayConfig.TrustedProxy) { self.proxy = proxy }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        strip(&exchange.request)
        return next(&exchange)
    }

    public func strip(_ request: inout HTTPRequest) {
        guard proxy.enabled else { return }
        let trusted = proxy.trusts(request)
        var removed = false
        for name in trusted ? proxy.headersNotAsserted : proxy.assertedHeaders where request.headers[name] != nil {
            request.headers[name] = nil
            removed = true
        }
        if removed {
            Log.shared.warning(trusted ? "identity headers the trusted proxy does not assert were removed"
                                       : "identity headers from an untrusted peer were removed",
                               ["peer": .string(Printable.path(request.remoteAddress ?? "unknown"))])
        }
    }
}
