import Foundation
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

    private let lock = NSLock()
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
        object["time"] = .string(Log.timestamp())
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

    package static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        // By hand rather than String(format:), which sets up Foundation's locale machinery
        // on first use: a cost every CGI process that logs would pay.
        var out = ""
        out.reserveCapacity(24)
        func put(_ n: Int, _ width: Int) {
            let digits = String(n)
            if digits.utf8.count < width { out += String(repeating: "0", count: width - digits.utf8.count) }
            out += digits
        }
        put(Int(tmv.tm_year) + 1900, 4); out += "-"; put(Int(tmv.tm_mon) + 1, 2); out += "-"; put(Int(tmv.tm_mday), 2)
        out += "T"; put(Int(tmv.tm_hour), 2); out += ":"; put(Int(tmv.tm_min), 2); out += ":"; put(Int(tmv.tm_sec), 2)
        out += "."; put(Int(tv.tv_usec / 1000), 3); out += "Z"
        return out
    }
}
