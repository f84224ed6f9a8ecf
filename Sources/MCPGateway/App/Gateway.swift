import FoundationEssentials
import GatewaySupport
import GatewayCrypto

/// What the FastCGI and CGI front ends hand every request to. It gives the request its id,
/// routes it by path alone to the instance that owns the path (or to a process-wide endpoint),
/// and stamps the answer with the id. Everything else happens in the instance's stages.
public final class Gateway: RequestHandler, Sendable {
    public let instances: [GatewayInstance]
    private let byPath: [String: GatewayInstance]
    private let processEndpoints: ProcessEndpoints
    /// Counts requests to the endpoints other than MCP (whose count the audit stage keeps).
    private let metrics: GatewayMetrics

    public init(instances: [GatewayInstance], startedAt: Double = Date().timeIntervalSince1970) {
        precondition(!instances.isEmpty, "a gateway serves at least one instance")
        self.instances = instances
        var paths: [String: GatewayInstance] = [:]
        for instance in instances { for p in instance.paths { paths[p] = instance } }
        byPath = paths
        processEndpoints = ProcessEndpoints(instances: instances, startedAt: startedAt)
        metrics = GatewayMetrics(counters: instances[0].metrics.counters)
    }

    /// Every configured instance, built by the composition root.
    public static func make(config: ProcessConfig, workerThreads: Int = 1) throws -> Gateway {
        try Gateway(instances: InstanceBuilder.buildAll(config: config, workerThreads: workerThreads))
    }

    public func respond(to request: HTTPRequest) -> HTTPResponse {
        // One draw from the system generator: the request id, and the audit pruning lottery.
        let draw = RandomWords.shared.next()
        let requestId = Hex.word(draw)
        var response: HTTPResponse
        if let instance = byPath[request.path] {
            var exchange = Exchange(request: request, requestId: requestId, draw: draw, receivedAt: Date().timeIntervalSince1970)
            response = instance.serve(&exchange)
            if request.path != instance.mcpPath { metrics.recordHTTPRequest(path: request.path, status: response.status) }
        } else {
            response = processEndpoints.respond(to: request) ?? NotFound.response(for: request)
            metrics.recordHTTPRequest(path: request.path, status: response.status)
        }
        response.headers.append(("X-Request-Id", requestId))
        response.headers.append(("Cache-Control", "no-store"))
        return response
    }
}
