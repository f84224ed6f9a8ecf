extension StringProtocol {
    /// Drops leading and trailing spaces and tabs (HTTP's optional whitespace).
    /// Foundation's trimmingCharacters converts through UTF-16 and costs more than
    /// the rest of a request, so header values are trimmed here instead.
    package func trimmingOWS() -> Substring {
        let s = Substring(self)
        guard let first = s.firstIndex(where: { $0 != " " && $0 != "\t" }) else { return s[s.endIndex...] }
        let last = s.lastIndex(where: { $0 != " " && $0 != "\t" })!
        return s[first...last]
    }
}
