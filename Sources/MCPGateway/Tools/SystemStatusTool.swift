import MCPJSON

/// Health and load figures for administrators: version, uptime, processes, store,
/// key and token caches, rate limits, recent upstream errors. Never a secret or token.
public struct SystemStatusTool: NamedTool {
    static let name = "system_status"
    let operations: OperationsStatus

    public init(operations: OperationsStatus) { self.operations = operations }

    public var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name,
            title: "System status",
            description: "Reports the server's version, uptime, process and worker counts, shared store health and size, signing-key cache age, token-cache and rate-limit figures, and the most recent upstream errors.",
            inputSchema: ToolDefinition.noArguments,
            outputSchema: [
                "type": "object",
                "properties": [
                    "version": ["type": "string"], "uptime_seconds": ["type": "integer"],
                    "processes": ["type": ["integer", "null"]], "worker_threads": ["type": "integer"],
                    "store": ["type": "object"], "signing_keys": ["type": "object"], "token_cache": ["type": "object"],
                    "rate_limits": ["type": "object"], "last_upstream_errors": ["type": "array"],
                ],
                "required": ["version", "uptime_seconds", "worker_threads", "store", "signing_keys", "token_cache",
                             "rate_limits", "last_upstream_errors"],
            ],
            annotations: .readOnlyLocal,
            permission: "admin")
    }

    public func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        .structured(operations.status())
    }
}
