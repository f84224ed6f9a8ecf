import GatewayStore
import FoundationEssentials
import GatewaySupport
import MCPJSON

/// The endpoints that belong to the process rather than to an instance: `/health`,
/// `/ready` and `/metrics`. They reveal nothing instance-specific beyond readiness.
struct ProcessEndpoints: Sendable {
    let instances: [GatewayInstance]
    let startedAt: Double

    static let paths: Set<String> = ["/health", "/ready", "/metrics"]

    func respond(to request: HTTPRequest) -> HTTPResponse? {
        switch request.path {
        case "/health": return health(request)
        case "/ready": return ready(request)
        case "/metrics": return metrics(request)
        default: return nil
        }
    }

    /// Only says the process answers; `/ready` says whether it can serve.
    private func health(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, HEAD")])
        }
        let developmentMode = instances.contains { $0.config.auth.mode == .development }
        var o = JSONObject()
        o["status"] = "ok"
        o["version"] = .string(GatewayVersion.string)
        o["uptime_seconds"] = .integer(Int(Date().timeIntervalSince1970 - startedAt))
        o["development_mode"] = .bool(developmentMode)
        if developmentMode {
            o["warning"] = "development mode: only locally minted tokens are accepted; do not expose this instance"
        }
        return HTTPResponse.json(200, .object(o))
    }

    /// 200 when every instance can serve: each has its own store and may have its own keys.
    /// Either way the answer says how far behind the audit shipping is, which matters most
    /// while the store is down and records wait in the journals.
    private func ready(_ request: HTTPRequest) -> HTTPResponse {
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, HEAD")])
        }
        var body = auditBacklog()
        for instance in instances {
            guard let reason = instance.operations.notReadyReason() else { continue }
            if instances.count > 1 {
                Log.shared.warning("not ready", ["instance": .string(instance.name), "reason": .string(reason)])
                body["instance"] = .string(instance.name)
            } else {
                Log.shared.warning("not ready", ["reason": .string(reason)])
            }
            body["status"] = "not_ready"
            body["reason"] = .string(reason)
            return HTTPResponse.json(503, .object(body), headers: [("Retry-After", "5")])
        }
        body["status"] = "ready"
        return HTTPResponse.json(200, .object(body))
    }

    /// Journals not yet moved into the store (a live writer's among them), the records in them,
    /// and how long the oldest has waited; read from the journals' frame headers, not their records.
    private func auditBacklog() -> JSONObject {
        let journals = instances.map { JournaledAuditLog.status(forStore: $0.config.resolvedStorePath) }
        let now = Date().timeIntervalSince1970
        var o = JSONObject()
        o["audit_journals_waiting"] = .integer(journals.reduce(0) { $0 + $1.pendingJournals })
        o["audit_records_waiting"] = .integer(journals.reduce(0) { $0 + $1.pendingRecords })
        o["audit_oldest_waiting_seconds"] = journals.compactMap { $0.oldestPendingAge(now: now) }.max().map { .integer($0) } ?? .null
        return o
    }

    /// Prometheus text, only for the configured networks (REMOTE_ADDR from the web server).
    /// Every instance counts into the same shared file, so the first one's view is everyone's.
    private func metrics(_ request: HTTPRequest) -> HTTPResponse {
        let first = instances[0]
        let settings = first.config.metrics
        guard settings.enabled else { return HTTPResponse.error(404, "not_found", "Metrics are turned off (metrics.enabled)") }
        guard settings.allows(request.remoteAddress) else {
            return HTTPResponse.error(403, "forbidden", "Metrics are only served to the networks in metrics.allowed_networks")
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            return HTTPResponse.error(405, "method_not_allowed", "Use GET", headers: [("Allow", "GET, HEAD")])
        }
        guard first.metrics.isAvailable else {
            return HTTPResponse.error(503, "unavailable", "The shared metrics file could not be mapped; see the log")
        }
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
                            body: Array(first.metrics.render(gauges: first.operations.gauges()).utf8))
    }
}
