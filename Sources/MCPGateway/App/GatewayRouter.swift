import GatewaySupport
import Foundation

/// Picks the instance a request belongs to by its path. One process serves every
/// instance; each has its own verifier, policy, limits, tools and store, and shares nothing
/// with the others but the worker threads.
public final class GatewayRouter: RequestHandler, @unchecked Sendable {
    public let gateways: [Gateway]
    private let byPath: [String: Gateway]

    public init(gateways: [Gateway]) {
        precondition(!gateways.isEmpty, "a router needs at least one instance")
        self.gateways = gateways
        var paths: [String: Gateway] = [:]
        for g in gateways { for p in g.ownPaths { paths[p] = g } }
        byPath = paths
    }

    /// One gateway per configured instance.
    public static func make(config: ProcessConfig) throws -> GatewayRouter {
        let sharesHost = config.instances.count > 1
        return GatewayRouter(gateways: try config.instances.map { try Gateway.make(config: $0, sharesHost: sharesHost) })
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        if request.path == "/ready" && gateways.count > 1 { return readyAcrossInstances(request) }
        // Paths no instance owns (/health, unknown paths) are answered by the first: they reveal nothing instance-specific.
        return (byPath[request.path] ?? gateways[0]).respond(to: request)
    }
}
