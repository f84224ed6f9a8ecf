/// Text from a request made safe to echo in a body or a log line.
enum Printable {
    /// Visible ASCII only, at most 200 characters, so a log or body cannot be forged.
    static func path(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(200).map { $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" }))
    }
}
