import FoundationEssentials
import GatewayStore
import MCPJSON

/// Lets a tenant's administrators read their own tenant's audit records, never another's:
/// the tenant comes from the verified token, not from the arguments.
public struct AuditLogTool: NamedTool {
    static let name = "audit_log"
    let store: AuditLog

    public init(store: AuditLog) { self.store = store }

    public var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name,
            title: "Audit log",
            description: "Returns recent audit records of your own tenant: who called which method or tool, the decision, status and latency. Newest records last.",
            inputSchema: [
                "type": "object",
                "properties": [
                    "since_minutes": ["type": "integer", "minimum": 1, "maximum": 43200,
                                      "description": "How far back to look, in minutes (default 60)."],
                    "limit": ["type": "integer", "minimum": 1, "maximum": 500, "description": "At most this many records (default 100)."],
                ],
                "additionalProperties": false,
            ],
            outputSchema: [
                "type": "object",
                "properties": ["tenant": ["type": "string"], "records": ["type": "array", "items": ["type": "object"]]],
                "required": ["tenant", "records"],
            ],
            annotations: .readOnlyLocal,
            permission: "admin")
    }

    public func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        guard let tenant = context.caller.tenantId else { throw ToolError("audit_log needs a caller with a tenant") }
        let minutes = arguments["since_minutes"]?.intValue ?? 60
        let limit = arguments["limit"]?.intValue ?? 100
        let since = Date().timeIntervalSince1970 - Double(minutes) * 60
        let records: [AuditRecord]
        do {
            records = try store.audit(since: since, tenant: tenant, limit: limit)
        } catch {
            throw ToolError("The audit trail cannot be read right now; try again shortly.")
        }
        return .structured(["tenant": .string(tenant), "records": .array(records.map(\.json))])
    }
}
