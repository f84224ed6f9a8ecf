#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// "2026-12-01T09:30:00Z": whole seconds, rounded the way ISO8601DateFormatter rounded them
    /// (to the millisecond, then down to the second) (status answers, backend sessions, `mcp-fcgi blocks`).
    package static func iso8601(_ seconds: Double) -> String {
        let milliseconds = (seconds * 1000 + 0.5).rounded(.down)  // half a millisecond rounds up, also below 1970
        let whole = Int((milliseconds / 1000).rounded(.down))
        return dateTimeString(seconds: whole) + "Z"
    }

    /// "2026-12-01T09:30:00Z" (or "z"), "2026-12-01T10:30:00+01:00", "+0100" or "+01" as seconds
    /// since 1970; nil for anything else: fractions of a second, other separators, surrounding
    /// text or spaces, a field out of range (month 13, 30 February, 24:00, second 60, offset
    /// beyond 23:59).
    package static func parse(_ text: String) -> Double? {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func number(_ at: Int, _ width: Int) -> Int? {
            var n = 0
            for i in at..<at + width {
                guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                n = n * 10 + Int(b[i] - 0x30)
            }
            return n
        }
        func byte(_ at: Int, _ c: Character) -> Bool { at < b.count && b[at] == c.asciiValue! }
        guard let year = number(0, 4), byte(4, "-"), let month = number(5, 2), byte(7, "-"), let day = number(8, 2),
              byte(10, "T"), let hour = number(11, 2), byte(13, ":"), let minute = number(14, 2), byte(16, ":"),
              let second = number(17, 2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
              hour < 24, minute < 60, second < 60 else { return nil }
        var offset = 0
        if b.count == 20 && (byte(19, "Z") || byte(19, "z")) {
            offset = 0
        } else if byte(19, "+") || byte(19, "-") {
            let zone: (Int, Int)?
            switch b.count {
            case 22: zone = number(20, 2).map { ($0, 0) }                                         // +01
            case 24: zone = number(20, 2).flatMap { h in number(22, 2).map { (h, $0) } }          // +0100
            case 25: zone = byte(22, ":") ? number(20, 2).flatMap { h in number(23, 2).map { (h, $0) } } : nil  // +01:00
            default: zone = nil
            }
            guard let (h, m) = zone, h < 24, m < 60 else { return nil }
            offset = (h * 3600 + m * 60) * (byte(19, "-") ? -1 : 1)
        } else {
            return nil
        }
        return Double(daysFromCivil(year: year, month: month, day: day) * 86400 + hour * 3600 + minute * 60 + second - offset)
    }

    package static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    package static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// By hand rather than with a formatter or String(format:), which set up Foundation's locale
    /// machinery on first use: a cost every CGI process that logs would pay.
    private static func millisecondString(seconds: Int, milliseconds: Int) -> String {
        var out = dateTimeString(seconds: seconds)
        out += "."
        let digits = String(milliseconds)
        out += String(repeating: "0", count: max(0, 3 - digits.utf8.count)) + digits
        out += "Z"
        return out
    }

    /// "2026-12-01T09:30:00" in UTC, the year at least 4 digits.
    private static func dateTimeString(seconds: Int) -> String {
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
        return out
    }
}
