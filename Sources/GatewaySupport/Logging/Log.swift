import FoundationEssentials
import Glibc
import MCPJSON

/// Structured JSON-lines logging to stderr, which nginx, Apache and systemd all collect.
/// Callers pass fields, never raw request headers, so tokens cannot slip into a line.
public final class Log: @unchecked Sendable {
    public enum Level: Int, Comparable, Sendable {
        case debug = 0, info, warning, error

        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warning", "warn": self = .warning
            case "error": self = .error
            default: return nil
            }
        }

        package var name: String {
            switch self {
            case .debug: return "debug"
            case .info: return "info"
            case .warning: return "warning"
            case .error: return "error"
            }
        }

        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    public static let shared = Log()

    private let lock = Lock()
    private var minimum: Level = .info
    private var sink: (([UInt8]) -> Void)?

    public var level: Level {
        get { lock.withLock { minimum } }
        set { lock.withLock { minimum = newValue } }
    }

    /// Tests capture lines here; nil writes to stderr.
    public func redirect(_ sink: (([UInt8]) -> Void)?) { lock.withLock { self.sink = sink } }

    public func log(_ level: Level, _ message: String, _ fields: KeyValuePairs<String, JSONValue> = [:]) {
        guard level >= self.level else { return }
        var object = JSONObject()
        object["time"] = .string(Timestamp.nowWithMilliseconds())
        object["level"] = .string(level.name)
        object["msg"] = .string(message)
        object["pid"] = .integer(Int(getpid()))
        for (k, v) in fields { object[k] = v }
        var line = JSONWriter.serialize(.object(object))
        line.append(0x0A)
        lock.withLock {
            if let sink { sink(line) } else { line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) } }
        }
    }

    public func debug(_ m: String, _ f: KeyValuePairs<String, JSONValue> = [:]) { log(.debug, m, f) }
    public func info(_ m: String, _ f: KeyValuePairs<String, JSONValue> = [:]) { log(.info, m, f) }
    public func warning(_ m: String, _ f: KeyValuePairs<String, JSONValue> = [:]) { log(.warning, m, f) }
    public func error(_ m: String, _ f: KeyValuePairs<String, JSONValue> = [:]) { log(.error, m, f) }
}
