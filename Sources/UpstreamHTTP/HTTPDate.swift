import Foundation

/// HTTP dates (RFC 9110 §5.6.7), for `Retry-After` and cookie `Expires`: the IMF-fixdate that
/// servers send today, and the older dashed forms that some `Set-Cookie` headers still use.
package enum HTTPDate {
    /// Unix seconds, or nil when `text` is in none of the forms.
    package static func parse(_ text: String) -> Double? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEE, dd-MMM-yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz"] {
            f.dateFormat = format
            if let d = f.date(from: text) { return d.timeIntervalSince1970 }
        }
        return nil
    }
}
