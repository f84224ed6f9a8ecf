import EntraAuth
import GatewayStore
import GatewaySupport
import MCPJSON

/// One request on its way through the stages: what came in, and what each stage has
/// established so far. Each stage reads what the earlier ones set and adds its own facts;
/// the audit stage turns them into the request's record at the end.
public struct Exchange {
    public var request: HTTPRequest
    public let requestId: String
    /// The request's random word: its id comes from it, and so does the audit pruning lottery.
    public let draw: UInt64
    public let receivedAt: Double

    /// Set by the transport rules: the JSON-RPC message and the era it is served under.
    public var message: AcceptedMessage?
    /// Set by the transport rules: a DELETE that ends a legacy session (sessions on).
    public var endsSession = false
    /// Set by authentication: who is calling.
    public var caller: Caller?
    /// Set by dispatch for `tools/call`: the tool asked for, and (after authorization) its arguments.
    public var toolCall: ToolCall?
    /// What the audit record says beyond the answer: allowed or denied, and why.
    public var verdict = Verdict()
    /// Set by the audit stage's tool start: the tool call's record, begun before the tool ran,
    /// and where it is in the trail (the audit stage completes that row).
    public var begunAudit: (entry: AuditEntry, record: AuditRecord)?

    public init(request: HTTPRequest, requestId: String, draw: UInt64, receivedAt: Double) {
        self.request = request
        self.requestId = requestId
        self.draw = draw
        self.receivedAt = receivedAt
    }

    /// The verified principal (a caller always has one outside hand-built test callers).
    public var principal: Principal? { caller?.principal }
}

/// A request that passed the transport rules, ready for authentication and dispatch.
public struct AcceptedMessage: Sendable {
    public let message: JSONRPCMessage
    public let era: ProtocolEra
    public let protocolVersion: String
}

/// The tool a `tools/call` names; `arguments` is set once authorization has checked them.
public struct ToolCall: Sendable {
    public let entry: ToolRegistry.Entry
    public var arguments = JSONObject()

    public var name: String { entry.definition.name }
}

/// The decision on the record. A request is denied until a stage lets it reach the server's
/// methods; a later refusal (a permission, a claims challenge) denies it again.
public struct Verdict: Sendable {
    public enum Decision: String, Sendable { case allowed, denied }
    public var decision = Decision.denied
    public var reason: String?
    /// The last HTTP status the tool got from its upstream (Power BI, a backend).
    public var upstreamStatus: Int?

    public mutating func deny(_ reason: String) {
        decision = .denied
        self.reason = reason
    }
}
