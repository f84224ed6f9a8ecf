import SharedMetrics
import GatewaySupport
import FoundationEssentials
import UpstreamHTTP

/// What the gateway counts, in Prometheus terms. Counters live in `SharedCounters`, so
/// `/metrics` shows what every process (FastCGI workers, mod_fcgid processes, CGI runs)
/// counted. Label values come only from fixed sets: a client cannot mint new series.
public final class GatewayMetrics: UpstreamObserver, @unchecked Sendable {
    public let counters: SharedCounters?
    /// `instance="name",` when the process serves several instances (names come from the
    /// config, so the set is fixed); empty otherwise, which keeps single-instance series as they were.
    let instanceLabel: String
    /// Marks this instance's upstream errors in the shared error ring (empty with one instance).
    let errorTag: String
    /// Series names counted on every request, built once instead of by interpolation each time.
    private let tokenCacheHit: String, tokenCacheMiss: String
    private let requestSeriesLock = Lock()
    private var requestSeries: [RequestSeriesKey: String] = [:]
    private struct RequestSeriesKey: Hashable { let method: String, tool: String, status: Int }
    /// The label sets are fixed (known methods, registered tools, statuses), so this stays small;
    /// past the bound names are built each time rather than kept.
    private static let requestSeriesKept = 512

    private func series(_ name: String, _ labels: String = "") -> String {
        let all = instanceLabel + labels
        return all.isEmpty ? name : "\(name){\(all.hasSuffix(",") ? String(all.dropLast()) : all)}"
    }

    static let knownMethods: Set<String> = [
        "initialize", "ping", "server/discover", "tools/list", "tools/call", "resources/list", "prompts/list",
        "notifications/initialized", "notifications/cancelled", "logging/setLevel", "DELETE session",
    ]
    static let knownPaths: Set<String> = ["/health", "/ready", "/metrics", "/me", "/.well-known/oauth-protected-resource"]
    /// Upper bounds of the upstream latency histogram, in seconds.
    static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    /// nil counters: metrics are off or the file could not be mapped; recording does nothing.
    /// `instance` labels the request, refusal and failure series (only when a process serves several).
    public init(counters: SharedCounters?, instance: String? = nil) {
        self.counters = counters
        self.instanceLabel = instance.map { "instance=\"\(Self.labelSafe($0))\"," } ?? ""
        self.errorTag = instance.map { "[\(Self.labelSafe($0))] " } ?? ""
        let all = instanceLabel
        func named(_ labels: String) -> String { "mcp_token_cache_lookups_total{\(all)\(labels)}" }
        tokenCacheHit = named("result=\"hit\"")
        tokenCacheMiss = named("result=\"miss\"")
    }

    /// The counters file every process of an installation maps.
    public static func countersPath(stateDirectory: String) -> String { stateDirectory + "/metrics.shm" }

    /// Maps the counters file; a failure is logged and leaves metrics off, never the service.
    public static func openCounters(stateDirectory: String) -> SharedCounters? {
        do {
            return try SharedCounters(path: countersPath(stateDirectory: stateDirectory))
        } catch {
            Log.shared.warning("metrics unavailable", ["error": .string("\(error)")])
            return nil
        }
    }

    public var isAvailable: Bool { counters != nil }

    // MARK: - recording

    /// `tool` is a registered tool's name or "unknown": the caller keeps the label set fixed.
    public func recordMCPRequest(method: String?, tool: String?, status: Int) {
        guard let counters else { return }
        let m = method.map { Self.knownMethods.contains($0) ? $0 : "other" } ?? "none"
        let t = tool.map(Self.labelSafe) ?? ""
        let key = RequestSeriesKey(method: m, tool: t, status: status)
        if let name = requestSeriesLock.withLock({ requestSeries[key] }) {
            counters.add(name)
            return
        }
        let name = series("mcp_requests_total", "method=\"\(m)\",tool=\"\(t)\",status=\"\(Self.statusLabel(status))\"")
        requestSeriesLock.withLock { if requestSeries.count < Self.requestSeriesKept { requestSeries[key] = name } }
        counters.add(name)
    }

    public func recordHTTPRequest(path: String, status: Int) {
        guard let counters else { return }
        let p = Self.knownPaths.contains(path) ? path : (path.hasPrefix("/.well-known/") ? "/.well-known/oauth-protected-resource" : "other")
        counters.add("mcp_http_requests_total{path=\"\(p)\",status=\"\(Self.statusLabel(status))\"}")
    }

    /// `reason` is one of the authenticator's fixed reason codes.
    public func recordAuthFailure(reason: String) {
        counters?.add(series("mcp_auth_failures_total", "reason=\"\(Self.labelSafe(reason))\""))
    }

    public func recordTokenCache(hit: Bool) {
        counters?.add(hit ? tokenCacheHit : tokenCacheMiss)
    }

    public func recordRateLimited() { counters?.add(series("mcp_rate_limit_rejections_total")) }
    public func recordBlocked() { counters?.add(series("mcp_blocked_requests_total")) }

    /// One call to an upstream (`name` from a fixed set: entra_keys, entra_token, powerbi, backend names).
    public func observeUpstream(_ name: String, seconds: Double, failed: Bool) {
        guard let counters else { return }
        let u = Self.labelSafe(name)
        for le in Self.latencyBuckets where seconds <= le {
            counters.add("mcp_upstream_request_duration_seconds_bucket{upstream=\"\(u)\",le=\"\(Self.number(le))\"}")
        }
        counters.add("mcp_upstream_request_duration_seconds_bucket{upstream=\"\(u)\",le=\"+Inf\"}")
        counters.add("mcp_upstream_request_duration_seconds_count{upstream=\"\(u)\"}")
        counters.add("mcp_upstream_request_duration_microseconds_sum{upstream=\"\(u)\"}", UInt64(max(0, seconds * 1_000_000)))
        if failed { counters.add("mcp_upstream_errors_total{upstream=\"\(u)\"}") }
    }

    /// Keeps the text for `system_status`. Callers pass a host and an error kind, never a URL's query or a body.
    public func recordUpstreamError(_ name: String, _ text: String) {
        let clean = String(String.UnicodeScalarView(text.unicodeScalars.prefix(150).map { $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" }))
        counters?.pushError("\(errorTag)\(Self.labelSafe(name)): \(clean)", at: Date().timeIntervalSince1970)
    }

    // MARK: - reading

    public struct Figures {
        public var tokenCacheHits: UInt64 = 0
        public var tokenCacheMisses: UInt64 = 0
        public var rateLimitRejections: UInt64 = 0
        public var blockedRequests: UInt64 = 0
        public var mcpRequests: UInt64 = 0
        public var authFailures: UInt64 = 0
    }

    /// This instance's figures only: the instances of a process share one counters file.
    public func figures() -> Figures {
        var f = Figures()
        for (key, value) in counters?.snapshot() ?? [:] where isOwn(key) {
            switch Self.family(key) {
            case "mcp_token_cache_lookups_total":
                if key.hasSuffix("result=\"hit\"}") { f.tokenCacheHits += value } else { f.tokenCacheMisses += value }
            case "mcp_rate_limit_rejections_total": f.rateLimitRejections += value
            case "mcp_blocked_requests_total": f.blockedRequests += value
            case "mcp_requests_total": f.mcpRequests += value
            case "mcp_auth_failures_total": f.authFailures += value
            default: break
            }
        }
        return f
    }

    /// Whether `series` was counted by this instance (every series is, with one instance).
    private func isOwn(_ series: String) -> Bool {
        instanceLabel.isEmpty || series.contains("{" + instanceLabel) || series.contains("{" + instanceLabel.dropLast() + "}")
    }

    /// This instance's recent upstream errors, newest first, without the tag that marks them as its own.
    public func recentUpstreamErrors() -> [(time: Double, text: String)] {
        (counters?.recentErrors() ?? []).compactMap { e in
            e.text.hasPrefix(errorTag) ? (e.time, String(e.text.dropFirst(errorTag.count))) : nil
        }
    }

    static let help: [String: (String, String)] = [
        "mcp_requests_total": ("counter", "MCP requests by JSON-RPC method, tool and HTTP status."),
        "mcp_http_requests_total": ("counter", "Requests to the other endpoints by path and HTTP status."),
        "mcp_auth_failures_total": ("counter", "Refused bearer tokens by reason."),
        "mcp_token_cache_lookups_total": ("counter", "Verified-token cache lookups by result."),
        "mcp_rate_limit_rejections_total": ("counter", "Requests refused with 429 by the per-user or per-tenant limits."),
        "mcp_blocked_requests_total": ("counter", "Requests refused because an operator blocked the caller."),
        "mcp_upstream_request_duration_seconds": ("histogram", "Latency of calls to upstreams (Entra keys and tokens, Power BI, backends)."),
        "mcp_upstream_errors_total": ("counter", "Failed upstream calls (transport errors and 5xx)."),
    ]

    /// The Prometheus text exposition (version 0.0.4) of every series, plus live gauges.
    public func render(gauges: [(name: String, help: String, value: Double)]) -> String {
        var families: [String: [(String, String)]] = [:]
        var samples = counters?.snapshot() ?? [:]
        // Every bucket of every upstream seen, zeros included, as Prometheus expects.
        let countPrefix = "mcp_upstream_request_duration_seconds_count{upstream=\""
        for key in samples.keys where key.hasPrefix(countPrefix) {
            let upstream = key.dropFirst(countPrefix.count).dropLast(2)
            for le in Self.latencyBuckets.map(Self.number) + ["+Inf"] {
                let bucket = "mcp_upstream_request_duration_seconds_bucket{upstream=\"\(upstream)\",le=\"\(le)\"}"
                if samples[bucket] == nil { samples[bucket] = 0 }
            }
        }
        for (key, value) in samples {
            var series = key
            var text = String(value)
            if key.hasPrefix("mcp_upstream_request_duration_microseconds_sum") {
                series = "mcp_upstream_request_duration_seconds_sum" + key.dropFirst("mcp_upstream_request_duration_microseconds_sum".count)
                text = Self.number(Double(value) / 1_000_000)
            }
            families[Self.family(series), default: []].append((series, text))
        }
        var out = ""
        for name in families.keys.sorted() {
            let (type, help) = Self.help[name] ?? ("untyped", name)
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (series, value) in families[name]!.sorted(by: { $0.0 < $1.0 }) { out += "\(series) \(value)\n" }
        }
        for g in gauges {
            out += "# HELP \(g.name) \(g.help)\n# TYPE \(g.name) gauge\n\(g.name) \(Self.number(g.value))\n"
        }
        return out
    }

    /// The family a series belongs to: its name without labels and histogram suffixes.
    static func family(_ series: String) -> String {
        let name = series.split(separator: "{", maxSplits: 1).first.map(String.init) ?? series
        for suffix in ["_bucket", "_count", "_sum"] where name.hasPrefix("mcp_upstream_request_duration_seconds") && name.hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }

    static func statusLabel(_ status: Int) -> String { (100...599).contains(status) ? String(status) : "other" }

    /// Label values are [A-Za-z0-9_./-] only; anything else becomes '_'.
    /// Counted per request, so it works on bytes: a name that is already safe (every registered
    /// tool's) comes back as it is, without a copy.
    static func labelSafe(_ s: String) -> String {
        func safe(_ v: UInt32) -> Bool {
            (0x30...0x39).contains(v) || (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v)
                || v == 0x5F || v == 0x2E || v == 0x2F || v == 0x2D
        }
        if s.utf8.count <= 64, s.utf8.allSatisfy({ safe(UInt32($0)) }) { return s }
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for c in s.unicodeScalars.prefix(64) { out.append(safe(c.value) ? UInt8(c.value) : UInt8(ascii: "_")) }
        return String(decoding: out, as: UTF8.self)
    }

    static func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
}
