import GatewayStore
import EntraAuth
import FoundationEssentials
import GatewaySupport
import MCPJSON

/// Fifth stage: operator blocks, then the per-user and per-tenant rate limits, both from the
/// shared store so they hold across every process. A store failure refuses (fail closed).
public struct Admission: Stage {
    let blocks: OperatorBlocks
    let limiter: any RateLimiter
    /// The instance's limits; a tenant record's own limits replace them for that tenant.
    let limits: GatewayConfig.RateLimits
    let metrics: GatewayMetrics

    public init(blocks: any BlockList, limiter: any RateLimiter, limits: GatewayConfig.RateLimits, metrics: GatewayMetrics) {
        self.blocks = OperatorBlocks(blocks: blocks, metrics: metrics)
        self.limiter = limiter
        self.limits = limits
        self.metrics = metrics
    }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        // Authentication always leaves a verified caller; without one, nothing passes (fail closed).
        guard let caller = exchange.caller, let p = caller.principal else { return Admission.noCaller(&exchange) }
        let id = exchange.message?.message.id
        let method = exchange.message?.message.method ?? "DELETE session"
        let now = Date().timeIntervalSince1970
        do {
            if let block = try blocks.activeBlock(for: p, now: now, requestId: exchange.requestId, method: method) {
                exchange.verdict.deny("blocked \(block.kind.rawValue)")
                let error = RPCError(RPCErrorCode.forbidden, OperatorBlocks.refusalMessage, data: ["blocked": .string(block.kind.rawValue)])
                return HTTPResponse.json(403, JSONRPCMessage.errorEnvelope(id: id, error: error))
            }
            let limits = caller.tenant?.rateLimits ?? self.limits
            if let wait = try limiter.take(caller.rateBuckets(for: limits) { buckets(p, limits) }, now: now) {
                metrics.recordRateLimited()
                let seconds = max(1, Int(wait.rounded(.up)))
                Log.shared.info("rate limit reached", ["request_id": .string(exchange.requestId),
                                                      "caller": .string("\(p.tenantId)/\(p.objectId)"), "retry_after": .integer(seconds)])
                exchange.verdict.deny("rate limited")
                let error = RPCError(RPCErrorCode.rateLimited, "Rate limit reached: retry in \(seconds) s",
                                     data: ["retryAfterSeconds": .integer(seconds)])
                return HTTPResponse.json(429, JSONRPCMessage.errorEnvelope(id: id, error: error),
                                         headers: [("Retry-After", String(seconds))])
            }
        } catch {
            Log.shared.error("shared store unavailable; refusing", ["request_id": .string(exchange.requestId), "error": .string("\(error)")])
            exchange.verdict.deny("store unavailable")
            return HTTPResponse.json(503, JSONRPCMessage.errorEnvelope(id: id, error: RPCError(RPCErrorCode.internalError,
                "The server's shared store is unavailable; try again shortly")), headers: [("Retry-After", "5")])
        }
        return next(&exchange)
    }

    static func noCaller(_ exchange: inout Exchange) -> HTTPResponse {
        exchange.verdict.deny("no verified caller")
        return HTTPResponse.error(500, "internal_error", "The request reached admission without a verified caller")
    }

    private func buckets(_ p: Principal, _ limits: GatewayConfig.RateLimits) -> [RateBucket] {
        var buckets: [RateBucket] = []
        if limits.userPerMinute > 0 {
            buckets.append(RateBucket(key: "user:\(p.tenantId)/\(p.objectId)", perMinute: Double(limits.userPerMinute),
                                      burst: Double(limits.userBurst)))
        }
        if limits.tenantPerMinute > 0 {
            buckets.append(RateBucket(key: "tenant:\(p.tenantId)", perMinute: Double(limits.tenantPerMinute),
                                      burst: Double(limits.tenantBurst)))
        }
        return buckets
    }
}
