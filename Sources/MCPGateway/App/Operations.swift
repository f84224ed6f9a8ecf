import GatewaySupport
import EntraAuth
import Foundation
import MCPJSON

/// What an operator needs to know about the running service, gathered from the shared
/// store, the shared counters and this process. Used by `/ready`, `/metrics` and `system_status`.
public final class OperationsStatus: @unchecked Sendable {
    let config: GatewayConfig
    let store: GatewayStore
    let verifier: TokenVerifier
    public let metrics: GatewayMetrics
    let startedAt: Double
    /// Worker threads of this process (set by the FastCGI front end; 1 for CGI).
    public var workerThreads = 1

    init(config: GatewayConfig, store: GatewayStore, verifier: TokenVerifier, metrics: GatewayMetrics, startedAt: Double) {
        self.config = config
        self.store = store
        self.verifier = verifier
        self.metrics = metrics
        self.startedAt = startedAt
    }

    /// nil when ready, else why not.
    public func notReadyReason() -> String? {
        do { _ = try store.health() } catch { return "the shared store does not take writes: \(error)" }
        if !verifier.keyProvider.ensureKeys() {
            return "no token signing keys are cached and the key endpoint cannot be reached"
        }
        return nil
    }

    public func status() -> JSONValue {
        let now = Date().timeIntervalSince1970
        var o = JSONObject()
        o["version"] = .string(GatewayVersion.string)
        o["uptime_seconds"] = .integer(Int(now - startedAt))
        o["pid"] = .integer(Int(getpid()))
        o["processes"] = metrics.counters.map { .integer($0.liveProcesses) } ?? .null
        o["worker_threads"] = .integer(workerThreads)
        o["development_mode"] = .bool(config.auth.mode == .development)

        var st = JSONObject()
        do {
            let h = try store.health()
            st["healthy"] = true
            st["bytes"] = .integer(Int(h.bytes))
        } catch {
            st["healthy"] = false
            st["error"] = "the store does not take writes"
        }
        o["store"] = .object(st)

        var keys = JSONObject()
        if let fetched = verifier.keyProvider.keysFetchedAt {
            keys["age_seconds"] = .integer(Int(now) - Int(fetched))
            keys["refresh_hours"] = .integer(config.auth.jwksRefreshHours)
        } else {
            keys["age_seconds"] = .null
            keys["source"] = .string(config.auth.mode == .development ? "development key" : "none cached")
        }
        o["signing_keys"] = .object(keys)

        let f = metrics.figures()
        let lookups = f.tokenCacheHits + f.tokenCacheMisses
        o["token_cache"] = [
            "hits": .integer(Int(f.tokenCacheHits)), "misses": .integer(Int(f.tokenCacheMisses)),
            "hit_ratio": lookups == 0 ? .null : .double(Double(f.tokenCacheHits) / Double(lookups)),
            "cached_in_this_process": .integer(verifier.cachedTokens),
        ]
        let limits = config.rateLimits
        o["rate_limits"] = [
            "user_per_minute": .integer(limits.userPerMinute), "tenant_per_minute": .integer(limits.tenantPerMinute),
            "rejections": .integer(Int(f.rateLimitRejections)), "blocked_requests": .integer(Int(f.blockedRequests)),
        ]
        o["requests"] = ["mcp": .integer(Int(f.mcpRequests)), "auth_failures": .integer(Int(f.authFailures))]
        o["last_upstream_errors"] = .array((metrics.counters?.recentErrors() ?? []).map {
            ["time": .string(Timestamp.iso8601($0.time)), "error": .string($0.text)]
        })
        return .object(o)
    }

    /// Gauges computed when `/metrics` is read.
    func gauges() -> [(name: String, help: String, value: Double)] {
        var g: [(String, String, Double)] = []
        if let counters = metrics.counters {
            g.append(("mcp_processes", "Serving processes alive now (FastCGI and mod_fcgid).", Double(counters.liveProcesses)))
        }
        let f = metrics.figures()
        let lookups = f.tokenCacheHits + f.tokenCacheMisses
        if lookups > 0 {
            g.append(("mcp_token_cache_hit_ratio", "Share of token verifications answered from the cache.",
                      Double(f.tokenCacheHits) / Double(lookups)))
        }
        if let fetched = verifier.keyProvider.keysFetchedAt {
            g.append(("mcp_signing_keys_age_seconds", "Age of the cached token signing keys.",
                      Date().timeIntervalSince1970 - Double(fetched)))
        }
        return g
    }
}

extension Gateway {
    /// 200 when this instance can serve: the store takes writes and signing keys are at hand.
    func ready(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, HEAD")])
        }
        if let reason = operations.notReadyReason() {
            Log.shared.warning("not ready", ["reason": .string(reason)])
            return HTTPResponse.json(503, ["status": "not_ready", "reason": .string(reason)], headers: [("Retry-After", "5")])
        }
        return HTTPResponse.json(200, ["status": "ready"])
    }

    /// Prometheus text, only for the configured networks (REMOTE_ADDR from the web server).
    func metricsEndpoint(_ request: HTTPRequest) -> HTTPResponse {
        guard config.metrics.enabled else { return HTTPResponse.error(404, "not_found", "Metrics are turned off (metrics.enabled)") }
        guard config.metrics.allows(request.remoteAddress) else {
            return HTTPResponse.error(403, "forbidden", "Metrics are only served to the networks in metrics.allowed_networks")
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, HEAD")])
        }
        guard operations.metrics.isAvailable else {
            return HTTPResponse.error(503, "unavailable", "The shared metrics file could not be mapped; see the log")
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                            body: Array(operations.metrics.render(gauges: operations.gauges()).utf8))
    }
}

extension GatewayRouter {
    /// Ready only when every instance is: each has its own store and may have its own keys.
    func readyAcrossInstances(_ request: HTTPRequest) -> HTTPResponse {
        for g in gateways.dropFirst() where request.method == "GET" || request.method == "HEAD" {
            if let reason = g.operations.notReadyReason() {
                Log.shared.warning("not ready", ["instance": .string(g.config.instanceName), "reason": .string(reason)])
                return HTTPResponse.json(503, ["status": "not_ready", "instance": .string(g.config.instanceName), "reason": .string(reason)],
                                         headers: [("Retry-After", "5"), ("X-Request-Id", Gateway.newRequestId()), ("Cache-Control", "no-store")])
            }
        }
        // The first instance checks itself and answers with the usual headers.
        return gateways[0].respond(to: request)
    }
}
