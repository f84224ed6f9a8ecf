import GatewayStore
import EntraAuth
import GatewayCrypto
import FoundationEssentials
import GatewaySupport
import MCPJSON

/// Wraps every stage after routing: whatever they answer, the request's record is written
/// to the audit trail (the process's journal in front of the shared store) before the answer leaves. If it cannot be written the caller gets
/// 503, never an unrecorded answer. It also counts the request for `/metrics`.
/// An allowed tool call is recorded twice over: begun by `toolStart` before the tool runs
/// (so no side effect happens unrecorded), completed here after.
///
/// A request refused before authentication succeeded is only sampled (`audit.unauthenticated_per_minute`):
/// anyone can send those, and one row each would let them fill the disk.
public struct Audit: Stage {
    let log: any AuditLog
    let instance: String
    /// What to keep and for how long (`audit` section).
    let policy: GatewayConfig.Audit
    let metrics: GatewayMetrics
    /// Known tool names get their own metrics label; any other name is counted as "unknown".
    let registry: ToolRegistry
    let ceiling: StoreCeilingWatch

    public init(log: any AuditLog, instance: String, policy: GatewayConfig.Audit, metrics: GatewayMetrics,
                registry: ToolRegistry, ceiling: StoreCeilingWatch) {
        self.log = log
        self.instance = instance
        self.policy = policy
        self.metrics = metrics
        self.registry = registry
        self.ceiling = ceiling
    }

    public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
        var response = next(&exchange)
        let record = self.record(of: exchange, status: response.status)
        do {
            if let begun = exchange.begunAudit {
                try log.completeAudit(begun.entry, with: record)
            } else {
                try append(record, authenticated: exchange.caller != nil)
            }
            if ceiling.foundOverCeiling(now: exchange.receivedAt) {
                prune(now: exchange.receivedAt)
            } else {
                pruneOccasionally(now: exchange.receivedAt, draw: exchange.draw)
            }
        } catch {
            if exchange.begunAudit != nil {
                Log.shared.error("audit trail unavailable after the tool ran; its started record remains unfinished; refusing",
                                 ["request_id": .string(exchange.requestId), "error": .string("\(error)")])
            } else {
                Log.shared.error("audit trail unavailable; refusing", ["request_id": .string(exchange.requestId), "error": .string("\(error)")])
            }
            response = Self.unavailable
        }
        let tool = record.tool.map { registry.tool(named: $0)?.definition.name ?? "unknown" }
        metrics.recordMCPRequest(method: record.method, tool: tool, status: response.status)
        if Log.shared.level <= .debug, let caller = exchange.caller {
            Log.shared.debug("mcp request", ["request_id": .string(exchange.requestId), "caller": .string(caller.key),
                                             "method": JSONValue(record.method), "era": JSONValue(exchange.message?.era.rawValue),
                                             "tool": JSONValue(record.tool), "status": .integer(response.status)])
        }
        return response
    }

    /// The answer when the trail cannot be written: nothing goes out unrecorded.
    static var unavailable: HTTPResponse {
        HTTPResponse.json(503, JSONRPCMessage.errorEnvelope(id: nil, error: RPCError(RPCErrorCode.internalError,
            "The server cannot record this request right now; try again shortly")), headers: [("Retry-After", "5")])
    }

    /// Installed right before the tool runs (after authorization), in the same path as this stage.
    public var toolStart: ToolStart { ToolStart(audit: self) }

    /// Writes the record of an allowed tool call before the tool runs, unfinished; the audit
    /// stage completes it after. If it cannot be written the tool is not run and the caller
    /// gets 503: nothing happened upstream. A tool that answers from the request alone
    /// (`Tool.answersFromTheRequestAlone`) can do nothing to record beforehand: its one
    /// completed record is written by the audit stage, before the answer, like any request's.
    public struct ToolStart: Stage {
        let audit: Audit

        public func handle(_ exchange: inout Exchange, next: Next) -> HTTPResponse {
            guard let call = exchange.toolCall, exchange.verdict.decision == .allowed,
                  !call.entry.tool.answersFromTheRequestAlone else { return next(&exchange) }
            var started = audit.record(of: exchange, status: 0)
            started.reason = "in progress"
            started.completed = false
            do {
                exchange.begunAudit = (try audit.log.beginAudit(started), started)
            } catch {
                Log.shared.error("audit trail unavailable; the tool was not run", ["request_id": .string(exchange.requestId),
                                                                                   "tool": JSONValue(started.tool),
                                                                                   "error": .string("\(error)")])
                exchange.verdict.reason = "audit unavailable"
                return Audit.unavailable
            }
            return next(&exchange)
        }
    }

    /// The record of what the stages established. Arguments are kept as a digest, and as
    /// values only where the operator asked for them; never a token or secret. A tool call whose
    /// record was begun reuses it: who called what is settled, only the outcome is new.
    func record(of exchange: Exchange, status: Int) -> AuditRecord {
        var r = exchange.begunAudit?.record ?? subject(of: exchange)
        r.decision = exchange.verdict.decision.rawValue
        r.reason = exchange.verdict.reason
        r.upstreamStatus = exchange.verdict.upstreamStatus
        r.httpStatus = status
        r.latencyMilliseconds = (Date().timeIntervalSince1970 - exchange.receivedAt) * 1000
        r.completed = true
        return r
    }

    /// The arguments of a call that has none, `{}`, and their digest, worked out once: most
    /// calls of the cheap tools send none.
    private static let noArguments: [UInt8] = Array("{}".utf8)
    private static let noArgumentsDigest = SHA256Digest(noArguments).hex

    /// Who asked for what: the request, the method and tool, the arguments' digest, the caller.
    private func subject(of exchange: Exchange) -> AuditRecord {
        var r = AuditRecord(time: exchange.receivedAt, requestId: exchange.requestId, instance: instance,
                            decision: Verdict.Decision.denied.rawValue, httpStatus: 0, latencyMilliseconds: 0)
        if exchange.endsSession {
            r.method = "DELETE session"
        } else if let message = exchange.message?.message {
            r.method = message.method
            if message.method == "tools/call" {
                // The registered name, never the name as sent: lookups match canonically
                // equivalent strings ("\u{212A}" is "K"), and the trail is searched by bytes.
                r.tool = exchange.toolCall?.name ?? message.params["name"]?.stringValue.map { registry.tool(named: $0)?.definition.name ?? $0 }
                let arguments = JSONWriter.serialize(message.params["arguments"] ?? .object(JSONObject()))
                r.argumentsDigest = arguments == Self.noArguments ? Self.noArgumentsDigest : SHA256Digest(arguments).hex
                if policy.includeArguments && exchange.caller != nil { r.arguments = String(decoding: arguments, as: UTF8.self) }
            }
        }
        if let p = exchange.principal {
            r.tenant = p.tenantId
            r.user = p.objectId
            r.clientApp = p.clientAppId
        }
        return r
    }

    /// Every authenticated request keeps its record; unauthenticated ones while the instance's
    /// sample bucket (shared by the site's processes) has room.
    private func append(_ record: AuditRecord, authenticated: Bool) throws {
        if authenticated { return try log.appendAudit(record) }
        let perMinute = Double(policy.unauthenticatedPerMinute)
        guard perMinute > 0 else { return }
        let sample = RateBucket(key: "audit-unauthenticated:\(instance)", perMinute: perMinute, burst: perMinute)
        _ = try log.appendSampledAudit(record, sample: sample)
    }

    /// Retention without a scheduler: about one request in a thousand prunes (`draw` is the
    /// request's random word, so no second trip to the system generator).
    private func pruneOccasionally(now: Double, draw: UInt64) {
        guard (draw >> 32) % 1000 == 0 else { return }
        prune(now: now)
    }

    private func prune(now: Double) {
        log.pruneAuditSoon(before: now - Double(policy.retentionDays) * 86_400)
    }
}
