import MCPJSON

/// A configuration problem, with where it is and how to fix it.
public struct ConfigError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public init(_ path: String, _ problem: String) { self.path = path; self.problem = problem }
    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
}

/// Reads one JSON object section, remembering which keys were used so that
/// misspelt keys are reported instead of silently ignored.
final class ConfigSection {
    let path: String
    private let object: JSONObject
    private var used: Set<String> = []
    private(set) var errors: [ConfigError] = []

    init(_ object: JSONObject, path: String) {
        self.object = object
        self.path = path
    }

    private func at(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func fail(_ key: String, _ problem: String) { errors.append(ConfigError(at(key), problem)) }

    private func value(_ key: String) -> JSONValue? {
        used.insert(key)
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    /// The value as written, for sections that hold JSON documents (schemas) or maps of objects.
    func json(_ key: String) -> JSONValue? { value(key) }

    func string(_ key: String) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { fail(key, "must be a string"); return nil }
        return s
    }

    func string(_ key: String, default d: String) -> String { string(key) ?? d }

    func int(_ key: String, default d: Int, range: ClosedRange<Int>) -> Int {
        guard let v = value(key) else { return d }
        guard let i = v.intValue else { fail(key, "must be a whole number"); return d }
        guard range.contains(i) else { fail(key, "must be between \(range.lowerBound) and \(range.upperBound), not \(i)"); return d }
        return i
    }

    func bool(_ key: String, default d: Bool) -> Bool {
        guard let v = value(key) else { return d }
        guard let b = v.boolValue else { fail(key, "must be true or false"); return d }
        return b
    }

    func strings(_ key: String) -> [String]? {
        guard let v = value(key) else { return nil }
        guard let a = v.arrayValue else { fail(key, "must be a list of strings"); return nil }
        var out: [String] = []
        for item in a {
            guard let s = item.stringValue else { fail(key, "must be a list of strings"); return nil }
            out.append(s)
        }
        return out
    }

    /// An object whose values are lists of strings: {"MCP.Admin": ["user", "admin"]}.
    func stringListMap(_ key: String) -> [String: [String]]? {
        guard let v = value(key) else { return nil }
        guard let o = v.objectValue else { fail(key, "must be an object of string lists"); return nil }
        var out: [String: [String]] = [:]
        for (name, list) in o {
            guard let items = list.arrayValue?.compactMap({ $0.stringValue }), items.count == list.arrayValue?.count else {
                fail("\(key).\(name)", "must be a list of strings"); return nil
            }
            out[name] = items
        }
        return out
    }

    func section(_ key: String) -> ConfigSection {
        guard let v = value(key) else { return ConfigSection(JSONObject(), path: at(key)) }
        guard let o = v.objectValue else { fail(key, "must be an object"); return ConfigSection(JSONObject(), path: at(key)) }
        return ConfigSection(o, path: at(key))
    }

    var isPresent: Bool { !object.isEmpty }

    /// Whether the key is in this section at all (without marking it read).
    func has(_ key: String) -> Bool { object[key] != nil }

    var raw: JSONObject { object }

    /// Call once every key has been read: anything unread is a mistake in the file.
    func finish() -> [ConfigError] {
        for key in object.keys where !used.contains(key) {
            errors.append(ConfigError(at(key), "unknown setting (check the spelling against the README's configuration reference)"))
        }
        return errors
    }
}
