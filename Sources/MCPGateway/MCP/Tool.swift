import MCPJSON

/// Hints about what a tool does (MCP ToolAnnotations). They are hints for clients,
/// never a security boundary; authorization uses `ToolDefinition.permission`.
public struct ToolAnnotations: Sendable {
    public var readOnly: Bool
    public var destructive: Bool
    public var idempotent: Bool
    public var openWorld: Bool

    public init(readOnly: Bool, destructive: Bool = false, idempotent: Bool = true, openWorld: Bool = false) {
        self.readOnly = readOnly
        self.destructive = destructive
        self.idempotent = idempotent
        self.openWorld = openWorld
    }

    public static let readOnlyLocal = ToolAnnotations(readOnly: true)

    func json(title: String?) -> JSONValue {
        var o = JSONObject()
        if let title { o["title"] = .string(title) }
        o["readOnlyHint"] = .bool(readOnly)
        o["destructiveHint"] = .bool(destructive)
        o["idempotentHint"] = .bool(idempotent)
        o["openWorldHint"] = .bool(openWorld)
        return .object(o)
    }
}

/// Everything a client sees about a tool, plus the permission a caller needs to use it.
public struct ToolDefinition: Sendable {
    public var name: String
    public var title: String?
    public var description: String
    public var inputSchema: JSONValue
    public var outputSchema: JSONValue?
    public var annotations: ToolAnnotations
    /// The permission a caller must hold; nil means any authenticated caller.
    public var permission: String?

    public init(name: String, title: String? = nil, description: String, inputSchema: JSONValue,
                outputSchema: JSONValue? = nil, annotations: ToolAnnotations, permission: String? = nil) {
        self.name = name
        self.title = title
        self.description = description
        self.inputSchema = inputSchema
        self.outputSchema = outputSchema
        self.annotations = annotations
        self.permission = permission
    }

    /// A schema for tools that take no arguments.
    public static let noArguments: JSONValue = ["type": "object", "properties": [:], "additionalProperties": false]

    var json: JSONValue {
        var o = JSONObject()
        o["name"] = .string(name)
        if let title { o["title"] = .string(title) }
        o["description"] = .string(description)
        o["inputSchema"] = inputSchema
        if let outputSchema { o["outputSchema"] = outputSchema }
        o["annotations"] = annotations.json(title: title)
        return .object(o)
    }
}

/// What one tool call produced.
public struct ToolResult: Sendable {
    public var content: [JSONValue] {
        get {
            switch storedContent {
            case .items(let items): return items
            case .structuredText(let text): return [Self.textItem(text)]
            }
        }
        set { storedContent = .items(newValue) }
    }
    public var structuredContent: JSONValue? {
        // The text stays the JSON it was made from, as when it was a string of its own.
        didSet { if case .structuredText(let text) = storedContent { storedContent = .items([Self.textItem(text)]) } }
    }
    public var isError: Bool
    /// The HTTP status of the upstream call behind this result, if any: recorded in the
    /// audit trail, never sent to the client.
    public var upstreamStatus: Int?

    /// The content, or for a structured result only the JSON of `structuredContent`, which is
    /// its one text item: serialised once, and written into the answer twice from those bytes.
    private var storedContent: Content

    private enum Content: Sendable {
        case items([JSONValue])
        case structuredText([UInt8])
    }

    public init(content: [JSONValue], structuredContent: JSONValue? = nil, isError: Bool = false, upstreamStatus: Int? = nil) {
        storedContent = .items(content)
        self.structuredContent = structuredContent
        self.isError = isError
        self.upstreamStatus = upstreamStatus
    }

    private init(structured value: JSONValue, json: [UInt8]) {
        storedContent = .structuredText(json)
        structuredContent = value
        isError = false
    }

    /// Structured output, with the same JSON as text for clients that only read text.
    public static func structured(_ value: JSONValue) -> ToolResult {
        ToolResult(structured: value, json: JSONWriter.serialize(value))
    }

    /// The same, for a value whose JSON was serialised already: `json` must be
    /// `JSONWriter.serialize(value)`'s bytes.
    static func structured(_ value: JSONValue, serialized json: [UInt8]) -> ToolResult {
        ToolResult(structured: value, json: json)
    }

    /// A failure the model should read and can act on.
    public static func failure(_ message: String) -> ToolResult {
        ToolResult(content: [["type": "text", "text": .string(message)]], isError: true)
    }

    private static func textItem(_ json: [UInt8]) -> JSONValue {
        ["type": "text", "text": .string(String(decoding: json, as: UTF8.self))]
    }

    /// The JSON of `structuredContent` when it is also the only content, as text.
    var structuredText: [UInt8]? {
        if case .structuredText(let text) = storedContent { return text }
        return nil
    }

    var json: JSONValue {
        var o = JSONObject()
        o["content"] = .array(content)
        if let structuredContent { o["structuredContent"] = structuredContent }
        o["isError"] = .bool(isError)
        return .object(o)
    }
}

/// A failure inside a tool; it reaches the client as an `isError` result, not a protocol error.
public struct ToolError: Error, CustomStringConvertible {
    public let description: String
    /// The upstream's HTTP status when the failure came from there (for the audit trail).
    public let upstreamStatus: Int?
    public init(_ message: String, upstreamStatus: Int? = nil) {
        description = message
        self.upstreamStatus = upstreamStatus
    }
}

/// What a tool knows about the request it serves.
public struct ToolContext: Sendable {
    public let caller: Caller
    public let requestId: String
    public let protocolVersion: String
    public let era: ProtocolEra
    public let server: ServerIdentity
}

/// A tool. Implementations do plain blocking work on the worker thread that calls them.
public protocol Tool: Sendable {
    var definition: ToolDefinition { get }
    /// True only for a tool that answers from what the stages established about the request and
    /// nothing else: it reads no store, reaches no upstream and changes nothing. Its call is
    /// recorded once, completed, before the answer leaves (or refused with 503 if it cannot be);
    /// every other tool call is recorded as begun before the tool runs, so nothing can happen
    /// elsewhere unrecorded. Set in code, never from configuration or the tool's annotations.
    var answersFromTheRequestAlone: Bool { get }
    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult
}

extension Tool {
    public var answersFromTheRequestAlone: Bool { false }
}
