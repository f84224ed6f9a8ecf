import FoundationEssentials
import GatewaySupport
import MCPJSON

/// One MCP request on the record. Never holds a token or secret: arguments are kept
/// as a digest, and as values only where the operator asked for them.
public struct AuditRecord: Equatable, Sendable {
    public var time: Double
    public var requestId: String
    /// The instance (client deployment) that served it.
    public var instance: String?
    public var tenant: String?
    public var user: String?
    public var clientApp: String?
    public var method: String?
    public var tool: String?
    public var argumentsDigest: String?
    public var arguments: String?
    /// "allowed" or "denied".
    public var decision: String
    public var reason: String?
    public var httpStatus: Int
    public var upstreamStatus: Int?
    public var latencyMilliseconds: Double
    /// False while a tool call's record waits for its answer (see `AuditLog.beginAudit`);
    /// a record left so says the call started and no answer was recorded.
    public var completed: Bool

    public init(time: Double, requestId: String, instance: String? = nil, tenant: String? = nil, user: String? = nil,
                clientApp: String? = nil, method: String? = nil, tool: String? = nil, argumentsDigest: String? = nil,
                arguments: String? = nil, decision: String, reason: String? = nil, httpStatus: Int,
                upstreamStatus: Int? = nil, latencyMilliseconds: Double, completed: Bool = true) {
        self.time = time
        self.requestId = requestId
        self.instance = instance
        self.tenant = tenant
        self.user = user
        self.clientApp = clientApp
        self.method = method
        self.tool = tool
        self.argumentsDigest = argumentsDigest
        self.arguments = arguments
        self.decision = decision
        self.reason = reason
        self.httpStatus = httpStatus
        self.upstreamStatus = upstreamStatus
        self.latencyMilliseconds = latencyMilliseconds
        self.completed = completed
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["time"] = .string(Timestamp.iso8601Milliseconds(time))
        o["request_id"] = .string(requestId)
        o["instance"] = JSONValue(instance)
        o["tenant"] = JSONValue(tenant)
        o["user"] = JSONValue(user)
        o["client_app"] = JSONValue(clientApp)
        o["method"] = JSONValue(method)
        o["tool"] = JSONValue(tool)
        o["arguments_sha256"] = JSONValue(argumentsDigest)
        if let arguments { o["arguments"] = .string(arguments) }
        o["decision"] = .string(decision)
        o["reason"] = JSONValue(reason)
        o["http_status"] = .integer(httpStatus)
        o["upstream_status"] = upstreamStatus.map { .integer($0) } ?? .null
        o["latency_ms"] = .double((latencyMilliseconds * 100).rounded() / 100)
        // Completed records read as they always have; only an unfinished one says so.
        if !completed { o["completed"] = .bool(false) }
        return .object(o)
    }
}
