import MCPJSON

/// Tells the caller who the server thinks they are: tenant, user, app, scopes and roles.
public struct WhoAmITool: NamedTool {
    static let name = "whoami"

    public init() {}

    public let definition = ToolDefinition(
        name: WhoAmITool.name,
        title: "Who am I",
        description: "Returns the identity this server established for the caller from their access token: tenant, user object id, client app, scopes and roles.",
        inputSchema: ToolDefinition.noArguments,
        outputSchema: [
            "type": "object",
            "properties": ["authenticated": ["type": "boolean"]],
            "required": ["authenticated"],
        ],
        annotations: .readOnlyLocal)

    /// The caller's identity, as authentication settled it.
    public var answersFromTheRequestAlone: Bool { true }

    public func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let identity = context.caller.identityWithJSON
        return .structured(.object(identity.object), serialized: identity.json)
    }
}

/// Reports what this server is and which protocol revisions it speaks.
public struct ServerInfoTool: NamedTool {
    static let name = "server_info"
    let developmentMode: Bool

    public init(developmentMode: Bool) { self.developmentMode = developmentMode }

    public var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name,
            title: "Server information",
            description: "Returns this server's name and version, the MCP protocol revisions it supports, and the revision used for this request.",
            inputSchema: ToolDefinition.noArguments,
            outputSchema: [
                "type": "object",
                "properties": [
                    "name": ["type": "string"], "version": ["type": "string"],
                    "supported_protocol_versions": ["type": "array", "items": ["type": "string"]],
                    "protocol_version": ["type": "string"], "era": ["type": "string"],
                    "development_mode": ["type": "boolean"],
                ],
                "required": ["name", "version", "supported_protocol_versions", "protocol_version", "era"],
            ],
            annotations: .readOnlyLocal)
    }

    /// The server's identity and the request's protocol revision.
    public var answersFromTheRequestAlone: Bool { true }

    public func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        .structured([
            "name": .string(context.server.name),
            "version": .string(context.server.version),
            "supported_protocol_versions": JSONValue(ProtocolVersion.all),
            "protocol_version": .string(context.protocolVersion),
            "era": .string(context.era.rawValue),
            "development_mode": .bool(developmentMode),
        ])
    }
}
