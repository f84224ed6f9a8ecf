import MCPJSON

/// The tools this server offers, in a fixed order so listings are deterministic.
public final class ToolRegistry: @unchecked Sendable {
    /// A tool with its definition, built once at registration: definitions never change
    /// afterwards, and listing or calling must not rebuild their schemas on every request.
    /// A class, so handing an entry around costs one reference count, not one per field: every
    /// worker thread lists the same entries, and shared counts are contended cache lines.
    public final class Entry: Sendable {
        public let tool: Tool
        public let definition: ToolDefinition
        /// The definition as `tools/list` shows it.
        let listing: JSONValue
        /// `listing` serialised, as every `tools/list` answer writes it.
        let listingJSON: [UInt8]
        /// The input schema, its patterns compiled.
        public let validator: SchemaValidator

        init(tool: Tool, definition: ToolDefinition, listing: JSONValue, validator: SchemaValidator) {
            self.tool = tool
            self.definition = definition
            self.listing = listing
            listingJSON = JSONWriter.serialize(listing)
            self.validator = validator
        }
    }

    private var ordered: [Entry] = []
    private var byName: [String: Entry] = [:]

    public init() {}

    public enum RegistrationError: Error, CustomStringConvertible {
        case invalidName(String)
        case duplicate(String)
        case invalidSchema(String, String)

        public var description: String {
            switch self {
            case .invalidName(let n): return "tool name '\(n)' must be 1-64 characters of A-Z a-z 0-9 _ . -"
            case .duplicate(let n): return "tool '\(n)' is registered twice"
            case .invalidSchema(let n, let why): return "tool '\(n)': \(why)"
            }
        }
    }

    /// Registration happens at start-up, before any worker thread runs.
    public func register(_ tool: Tool) throws {
        let d = tool.definition
        guard ToolRegistry.isValidName(d.name) else { throw RegistrationError.invalidName(d.name) }
        guard byName[d.name] == nil else { throw RegistrationError.duplicate(d.name) }
        guard d.inputSchema["type"] == "object" else {
            throw RegistrationError.invalidSchema(d.name, "inputSchema must have \"type\": \"object\"")
        }
        if let out = d.outputSchema, out["type"] != "object" {
            throw RegistrationError.invalidSchema(d.name, "outputSchema must have an object root for older clients")
        }
        let entry = Entry(tool: tool, definition: d, listing: d.json, validator: SchemaValidator(schema: d.inputSchema))
        ordered.append(entry)
        byName[d.name] = entry
    }

    public func tool(named name: String) -> Entry? { byName[name] }

    public var all: [Entry] { ordered }

    /// The registered names: what a configured tool may not be called.
    public var names: Set<String> { Set(byName.keys) }

    /// The tools this caller may use, in registration order.
    public func visible(to caller: Caller) -> [Entry] {
        ordered.filter { caller.may($0.definition.permission) }
    }

    static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
        }
    }
}
