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

extension StringProtocol {
    /// Drops leading and trailing ASCII spaces and tabs. What Foundation's
    /// `trimmingCharacters(in: .whitespaces)` did here, less its Unicode spaces (U+00A0, U+2000…):
    /// for header values, cookie attributes, config lists and secrets, the separators are ASCII.
    package func trimmingASCIISpaces() -> String { String(trimmingOWS()) }

    /// Drops leading and trailing ASCII spaces, tabs, CR, LF, VT and FF (secrets read from files,
    /// driver messages): `.whitespacesAndNewlines` less its Unicode spaces and U+0085.
    package func trimmingASCIIWhitespaceAndNewlines() -> String {
        func isSpace(_ c: Character) -> Bool {
            c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\r\n" || c == "\u{0B}" || c == "\u{0C}"
        }
        let s = Substring(self)
        guard let first = s.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = s.lastIndex(where: { !isSpace($0) })!
        return String(s[first...last])
    }

    /// Drops every leading and trailing `character`.
    package func trimming(_ character: Character) -> String {
        let s = Substring(self)
        guard let first = s.firstIndex(where: { $0 != character }) else { return "" }
        let last = s.lastIndex(where: { $0 != character })!
        return String(s[first...last])
    }

    /// Equal but for the case of ASCII letters (header names); other bytes must match exactly.
    package func equalsIgnoringASCIICase<Other: StringProtocol>(_ other: Other) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }

    /// `self` with every ASCII-case-insensitive occurrence of `target` (ASCII, not empty) replaced.
    package func replacingIgnoringASCIICase(_ target: String, with replacement: String) -> String {
        let t = Array(target.utf8), bytes = Array(utf8)
        precondition(!t.isEmpty)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if i + t.count <= bytes.count, bytes[i..<i + t.count].elementsEqual(t, by: { x, y in x == y || (x | 0x20 == y | 0x20 && (y | 0x20) >= 0x61 && (y | 0x20) <= 0x7A) }) {
                out += replacement.utf8
                i += t.count
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
