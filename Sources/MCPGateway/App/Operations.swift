import GatewayStore
import GatewaySupport
import EntraAuth
import FoundationEssentials
import Glibc
import MCPJSON

/// What an operator needs to know about the running service, gathered from the shared
/// store, the shared counters and this process. Used by `/ready`, `/metrics` and `system_status`.
public final class OperationsStatus: Sendable {
    let config: GatewayConfig
    let store: StoreHealthCheck
    var ceiling: StoreCeiling { StoreCeiling(maxBytes: config.storeMaxBytes) }
    /// Entra's verifier; nil when Entra is not among the instance's providers.
    let verifier: TokenVerifier?
    public let metrics: GatewayMetrics
    let startedAt: Double
    /// Worker threads of this process (1 for CGI).
    let workerThreads: Int

    init(config: GatewayConfig, store: StoreHealthCheck, verifier: TokenVerifier?, metrics: GatewayMetrics, startedAt: Double,
         workerThreads: Int) {
        self.config = config
        self.store = store
        self.verifier = verifier
        self.metrics = metrics
        self.startedAt = startedAt
        self.workerThreads = workerThreads
    }

    /// nil when ready, else why not. The store is read, never written: a probe every second
    /// must not queue behind the site's writers. Whether it takes writes shows on every
    /// request (a record that cannot be written answers 503) and in `doctor`.
    public func notReadyReason() -> String? {
        do {
            if let alarm = ceiling.alarm(try store.health()) { return alarm }
        } catch { return "the shared store cannot be read: \(error)" }
        if let verifier, !verifier.keyProvider.ensureKeys() {
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
            let alarm = ceiling.alarm(h)
            st["healthy"] = .bool(alarm == nil)
            st["bytes"] = .integer(Int(h.bytes))
            st["max_bytes"] = .integer(Int(ceiling.maxBytes))
            if let alarm { st["error"] = .string(alarm) }
        } catch {
            st["healthy"] = false
            st["error"] = "the store cannot be read"
        }
        let journal = JournaledAuditLog.status(forStore: config.resolvedStorePath)
        st["audit_journals_waiting"] = .integer(journal.pendingJournals)
        st["audit_records_waiting"] = .integer(journal.pendingRecords)
        st["audit_oldest_waiting_seconds"] = journal.oldestPendingAge(now: now).map { .integer($0) } ?? .null
        o["store"] = .object(st)

        var keys = JSONObject()
        if let fetched = verifier?.keyProvider.keysFetchedAt {
            keys["age_seconds"] = .integer(Int(now) - Int(fetched))
            keys["refresh_hours"] = .integer(config.auth.jwksRefreshHours)
        } else {
            keys["age_seconds"] = .null
            keys["source"] = .string(verifier == nil ? "entra not configured" : config.auth.mode == .development ? "development key" : "none cached")
        }
        o["signing_keys"] = .object(keys)

        let f = metrics.figures()
        let lookups = f.tokenCacheHits + f.tokenCacheMisses
        o["token_cache"] = [
            "hits": .integer(Int(f.tokenCacheHits)), "misses": .integer(Int(f.tokenCacheMisses)),
            "hit_ratio": lookups == 0 ? .null : .double(Double(f.tokenCacheHits) / Double(lookups)),
            "cached_in_this_process": .integer(verifier?.cachedTokens ?? 0),
        ]
        let limits = config.rateLimits
        o["rate_limits"] = [
            "user_per_minute": .integer(limits.userPerMinute), "tenant_per_minute": .integer(limits.tenantPerMinute),
            "rejections": .integer(Int(f.rateLimitRejections)), "blocked_requests": .integer(Int(f.blockedRequests)),
        ]
        o["requests"] = ["mcp": .integer(Int(f.mcpRequests)), "auth_failures": .integer(Int(f.authFailures))]
        o["last_upstream_errors"] = .array(metrics.recentUpstreamErrors().map {
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
        if let fetched = verifier?.keyProvider.keysFetchedAt {
            g.append(("mcp_signing_keys_age_seconds", "Age of the cached token signing keys.",
                      Date().timeIntervalSince1970 - Double(fetched)))
        }
        return g
    }
}
