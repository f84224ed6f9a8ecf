import EntraAuth
import FoundationEssentials
import MCPJSON

/// Validates tool arguments against the JSON Schema subset tool authors use:
/// type, properties, required, additionalProperties, enum, const, string length
/// and pattern, numeric bounds, items, array length, format "uuid".
/// Messages name the offending path so a model can correct its call.
/// A tool's validator is built once, at registration, with every `pattern` compiled then.
public struct SchemaValidator: @unchecked Sendable {  // a compiled Regex is immutable and safe to share
    public let schema: JSONValue
    /// Compiled `pattern` values; a pattern that does not compile is absent, and never matches.
    /// Matched by Unicode scalar, as ICU's NSRegularExpression did (`.` is one code point, not
    /// one grapheme cluster), and unanchored: a match anywhere in the string will do.
    private let patterns: [String: Regex<AnyRegexOutput>]

    public init(schema: JSONValue) {
        self.schema = schema
        var compiled: [String: Regex<AnyRegexOutput>] = [:]
        SchemaValidator.collectPatterns(schema) { pattern in
            if compiled[pattern] == nil, let re = try? Regex(pattern) { compiled[pattern] = re.matchingSemantics(.unicodeScalar) }
        }
        patterns = compiled
    }

    /// The first problem with `value`, naming its path, or nil when it conforms.
    public func validate(_ value: JSONValue) -> String? {
        validate(value, against: schema, path: "arguments")
    }

    /// One-off validation (tests, output schemas): compiles the schema's patterns for this call.
    public static func validate(_ value: JSONValue, against schema: JSONValue, path: String = "arguments") -> String? {
        SchemaValidator(schema: schema).validate(value, against: schema, path: path)
    }

    private static func collectPatterns(_ schema: JSONValue, _ add: (String) -> Void) {
        switch schema {
        case .object(let o):
            for (key, value) in o {
                if key == "pattern", let p = value.stringValue { add(p) } else { collectPatterns(value, add) }
            }
        case .array(let items): for item in items { collectPatterns(item, add) }
        default: break
        }
    }

    private func validate(_ value: JSONValue, against schema: JSONValue, path: String) -> String? {
        guard case .object(let s) = schema else { return nil }

        if let t = s["type"] {
            let allowed: [String] = t.stringValue.map { [$0] } ?? (t.arrayValue?.compactMap { $0.stringValue } ?? [])
            if !allowed.isEmpty && !allowed.contains(where: { Self.matches(value, type: $0) }) {
                return "\(path) must be of type \(allowed.joined(separator: " or ")), not \(value.typeName)"
            }
        }
        if let options = s["enum"]?.arrayValue, !options.contains(where: { Self.equal($0, value) }) {
            return "\(path) must be one of \(JSONWriter.string(.array(options)))"
        }
        if let c = s["const"], !Self.equal(c, value) {
            return "\(path) must be \(JSONWriter.string(c))"
        }
        switch value {
        case .string(let str):
            let length = str.unicodeScalars.count
            if let min = s["minLength"]?.intValue, length < min { return "\(path) must be at least \(min) characters long" }
            if let max = s["maxLength"]?.intValue, length > max { return "\(path) must be at most \(max) characters long" }
            if let pattern = s["pattern"]?.stringValue {
                guard let re = patterns[pattern],
                      (try? re.firstMatch(in: str)) != nil
                else { return "\(path) does not match the pattern \(pattern)" }
            }
            if s["format"]?.stringValue == "uuid", !Self.isUUID(str) { return "\(path) must be a GUID such as 00000000-0000-0000-0000-000000000000" }
        case .integer, .double:
            let n = value.numberValue ?? 0
            if let min = s["minimum"]?.numberValue, n < min { return "\(path) must be at least \(JSONWriter.string(s["minimum"]!))" }
            if let max = s["maximum"]?.numberValue, n > max { return "\(path) must be at most \(JSONWriter.string(s["maximum"]!))" }
        case .array(let items):
            if let min = s["minItems"]?.intValue, items.count < min { return "\(path) must have at least \(min) items" }
            if let max = s["maxItems"]?.intValue, items.count > max { return "\(path) must have at most \(max) items" }
            if let itemSchema = s["items"] {
                for (i, item) in items.enumerated() {
                    if let e = validate(item, against: itemSchema, path: "\(path)[\(i)]") { return e }
                }
            }
        case .object(let o):
            let properties = s["properties"]?.objectValue ?? JSONObject()
            for name in s["required"]?.arrayValue?.compactMap({ $0.stringValue }) ?? [] where !o.contains(name) {
                return "\(path).\(name) is required"
            }
            for (key, v) in o {
                if let propertySchema = properties[key] {
                    if let e = validate(v, against: propertySchema, path: "\(path).\(key)") { return e }
                } else if let extra = s["additionalProperties"] {
                    if extra == .bool(false) { return "\(path).\(key) is not a known argument" }
                    if case .object = extra, let e = validate(v, against: extra, path: "\(path).\(key)") { return e }
                }
            }
        default:
            break
        }
        return nil
    }

    static func matches(_ v: JSONValue, type: String) -> Bool {
        switch type {
        case "number": return v.numberValue != nil
        case "integer": return v.typeName == "integer"
        default: return v.typeName == type
        }
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.numberValue, let y = b.numberValue { return x == y }
        return a == b
    }

    /// Ids that go into upstream URLs are GUIDs; one definition serves tokens and tool arguments.
    public static func isUUID(_ s: String) -> Bool { IssuerTenantCheck.isGUID(s) }
}
