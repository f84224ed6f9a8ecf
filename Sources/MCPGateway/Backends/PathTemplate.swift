import MCPJSON
import UpstreamHTTP

/// A backend path such as `/api/conversations/{conversation_id}/messages`. Each placeholder
/// is a whole segment and its argument is percent-encoded into exactly that segment, so
/// no argument can reach another segment, the query or the host.
public struct PathTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case placeholder(String)
    }

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
    }

    let segments: [Segment]
    let trailingSlash: Bool
    public let description: String

    public var placeholders: [String] {
        segments.compactMap { if case .placeholder(let p) = $0 { return p }; return nil }
    }

    public init(_ text: String) throws {
        guard text.hasPrefix("/") else { throw Problem(description: "must start with /") }
        guard text.utf8.count <= 1024 else { throw Problem(description: "must be at most 1024 characters") }
        var parts = text.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        trailingSlash = parts.count > 1 && parts.last == ""
        if trailingSlash || parts == [""] { parts.removeLast() }
        var segments: [Segment] = []
        var seen: Set<String> = []
        for part in parts {
            if part.isEmpty { throw Problem(description: "must not contain an empty segment (//)") }
            if part.hasPrefix("{") && part.hasSuffix("}") && part.count > 2 {
                let name = String(part.dropFirst().dropLast())
                guard name.utf8.allSatisfy(Self.isNameByte) else {
                    throw Problem(description: "placeholder {\(name)} must be letters, digits and _")
                }
                guard seen.insert(name).inserted else { throw Problem(description: "placeholder {\(name)} appears twice") }
                segments.append(.placeholder(name))
            } else {
                guard part != ".", part != "..", part.utf8.allSatisfy(Self.isLiteralByte) else {
                    throw Problem(description: "segment '\(part)' must be plain URL characters (no . or .., ?, #, %, spaces or braces); placeholders take a whole segment: {name}")
                }
                segments.append(.literal(part))
            }
        }
        self.segments = segments
        description = text
    }

    /// The path with every placeholder filled from `arguments` (validated against the schema already).
    public func render(_ arguments: JSONObject) throws -> String {
        var out = ""
        for segment in segments {
            out += "/"
            switch segment {
            case .literal(let s): out += s
            case .placeholder(let name):
                let value: String
                switch arguments[name] {
                case .string(let s)?: value = s
                case .integer(let n)?: value = String(n)
                default: throw ToolError("\(name) must be a string or whole number")
                }
                if let problem = Self.segmentProblem(value) { throw ToolError("\(name) \(problem)") }
                out += URLEncoding.percentEncode(value)
            }
        }
        if out.isEmpty || trailingSlash { out += "/" }
        return out
    }

    /// Why a value cannot be one path segment, or nil when it can.
    static func segmentProblem(_ value: String) -> String? {
        if value.isEmpty { return "must not be empty" }
        if value == "." || value == ".." { return "must not be . or .." }
        if value.utf8.count > 512 { return "must be at most 512 bytes" }
        if value.contains("/") || value.contains("\\") { return "must not contain / or \\" }
        if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "must not contain control characters" }
        return nil
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == UInt8(ascii: "_")
    }

    private static func isLiteralByte(_ b: UInt8) -> Bool {
        URLEncoding.isUnreserved(b) || Array("!$&'()*+,;=:@".utf8).contains(b)
    }
}

/// `application/x-www-form-urlencoded`-style query strings from scalar (or list) arguments.
package enum QueryString {
    package static func render(_ names: [String], from arguments: JSONObject) -> String {
        var pairs: [(String, String)] = []
        for name in names {
            guard let value = arguments[name] else { continue }
            let values = value.arrayValue ?? [value]
            for v in values {
                guard let text = scalarText(v) else { continue }
                pairs.append((name, text))
            }
        }
        return pairs.isEmpty ? "" : "?" + URLEncoding.form(pairs)
    }

    static func scalarText(_ v: JSONValue) -> String? {
        switch v {
        case .string(let s): return s
        case .integer(let n): return String(n)
        case .double: return JSONWriter.string(v)
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }
}
