#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GatewaySupport

/// HTTP dates (RFC 9110 §5.6.7), for `Retry-After` and cookie `Expires`: the IMF-fixdate that
/// servers send today, the obsolete RFC 850 and asctime forms, and the dashed form with a
/// four-digit year that some `Set-Cookie` headers still use.
package enum HTTPDate {
    /// Unix seconds, or nil when `text` is in none of the forms:
    ///   "Sun, 06 Nov 1994 08:49:37 GMT"    IMF-fixdate
    ///   "Sun, 06-Nov-1994 08:49:37 GMT"    dashed, four-digit year (Netscape cookies)
    ///   "Sunday, 06-Nov-94 08:49:37 GMT"   RFC 850; a two-digit year more than 50 years ahead of
    ///                                      `now` is the latest past year with those digits
    ///   "Sun Nov  6 08:49:37 1994"         asctime
    /// Day and month names in any case, short or long day names in any form; the weekday is
    /// not checked against the date. The zone is GMT (or UTC); fields out of range (32 October,
    /// 30 February, hour 24, second 60) and surrounding text are refused.
    package static func parse(_ text: String, now: Double = Double(time(nil))) -> Double? {
        var p = Parser(Array(text.utf8))
        guard let name = p.letters(), dayNames.contains(name) else { return nil }
        let day: Int, month: Int, year: Int, clock: Int
        if p.take(",") {
            guard p.take(" "), let d = p.digits(2) else { return nil }
            let dashed = p.take("-")
            guard dashed || p.take(" "), let m = p.month(), p.take(dashed ? "-" : " ") else { return nil }
            if let y = p.digits(4) {
                year = y
            } else if dashed, let yy = p.digits(2) {
                year = twoDigitYear(yy, now: now)
            } else {
                return nil
            }
            guard p.take(" "), let c = p.clock(), p.take(" "), let zone = p.letters(), zone == "gmt" || zone == "utc", p.atEnd else { return nil }
            day = d; month = m; clock = c
        } else {
            guard p.take(" "), let m = p.month(), p.take(" ") else { return nil }
            let d: Int?
            if p.take(" ") { d = p.digits(1) } else { d = p.digits(2) }
            guard let d, p.take(" "), let c = p.clock(), p.take(" "), let y = p.digits(4), p.atEnd else { return nil }
            day = d; month = m; year = y; clock = c
        }
        guard day >= 1, day <= Timestamp.daysInMonth(year: year, month: month) else { return nil }
        return Double(Timestamp.daysFromCivil(year: year, month: month, day: day) * 86400 + clock)
    }

    /// RFC 9110: a two-digit year that would be more than 50 years in the future is in the past century.
    static func twoDigitYear(_ yy: Int, now: Double) -> Int {
        var t = time_t(now)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let current = Int(tmv.tm_year) + 1900
        var year = current - current % 100 + yy
        if year > current + 50 { year -= 100 } else if year + 100 <= current + 50 { year += 100 }
        return year
    }

    private static let dayNames: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "monday", "tuesday",
                                                "wednesday", "thursday", "friday", "saturday", "sunday"]
    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    private struct Parser {
        let b: [UInt8]
        var i = 0
        init(_ b: [UInt8]) { self.b = b }

        var atEnd: Bool { i == b.count }

        mutating func take(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }

        /// A run of ASCII letters, lowercased; nil when there is none.
        mutating func letters() -> String? {
            let start = i
            while i < b.count, (b[i] | 0x20) >= 0x61, (b[i] | 0x20) <= 0x7A { i += 1 }
            return i > start ? String(decoding: b[start..<i].map { $0 | 0x20 }, as: UTF8.self) : nil
        }

        /// Exactly `width` ASCII digits.
        mutating func digits(_ width: Int) -> Int? {
            guard i + width <= b.count else { return nil }
            var n = 0
            for k in i..<i + width {
                guard b[k] >= 0x30, b[k] <= 0x39 else { return nil }
                n = n * 10 + Int(b[k] - 0x30)
            }
            if i + width < b.count, b[i + width] >= 0x30, b[i + width] <= 0x39 { return nil }
            i += width
            return n
        }

        /// A three-letter month name, 1...12.
        mutating func month() -> Int? {
            let start = i
            guard let name = letters(), let index = HTTPDate.monthNames.firstIndex(of: name) else { i = start; return nil }
            return index + 1
        }

        /// "HH:MM:SS" as seconds into the day.
        mutating func clock() -> Int? {
            guard let h = digits(2), take(":"), let m = digits(2), take(":"), let s = digits(2), h < 24, m < 60, s < 60 else { return nil }
            return h * 3600 + m * 60 + s
        }
    }
}
