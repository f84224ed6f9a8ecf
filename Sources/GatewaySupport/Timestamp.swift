import Foundation

/// ISO 8601 times in UTC: log lines, audit records, status answers and the operator commands
/// all write and read them here.
package enum Timestamp {
    /// "2026-12-01T09:30:00.123Z", milliseconds truncated (audit records).
    package static func iso8601Milliseconds(_ seconds: Double) -> String {
        let whole = Int(seconds)
        return millisecondString(seconds: whole, milliseconds: Int((seconds - Double(whole)) * 1000))
    }

    /// The current time as `iso8601Milliseconds` writes it, from the clock's own microseconds (log lines).
    package static func nowWithMilliseconds() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        return millisecondString(seconds: Int(tv.tv_sec), milliseconds: Int(tv.tv_usec / 1000))
    }

    /// "2026-12-01T09:30:00Z": whole seconds, rounded the way ISO8601DateFormatter rounds them
    /// (status answers, backend sessions, `mcp-fcgi blocks`).
    package static func iso8601(_ seconds: Double) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: seconds))
    }

    /// "2026-12-01T09:30:00Z" or "2026-12-01T10:30:00+01:00" as seconds since 1970; nil for anything else.
    package static func parse(_ text: String) -> Double? {
        ISO8601DateFormatter().date(from: text)?.timeIntervalSince1970
    }

    /// By hand rather than with a formatter or String(format:), which set up Foundation's locale
    /// machinery on first use: a cost every CGI process that logs would pay.
    private static func millisecondString(seconds: Int, milliseconds: Int) -> String {
        var t = time_t(seconds)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var out = ""
        out.reserveCapacity(24)
        func put(_ n: Int, _ width: Int) {
            let digits = String(n)
            if digits.utf8.count < width { out += String(repeating: "0", count: width - digits.utf8.count) }
            out += digits
        }
        put(Int(tmv.tm_year) + 1900, 4); out += "-"; put(Int(tmv.tm_mon) + 1, 2); out += "-"; put(Int(tmv.tm_mday), 2)
        out += "T"; put(Int(tmv.tm_hour), 2); out += ":"; put(Int(tmv.tm_min), 2); out += ":"; put(Int(tmv.tm_sec), 2)
        out += "."; put(milliseconds, 3); out += "Z"
        return out
    }
}
