import FoundationEssentials
import GatewaySupport

/// An absolute URL with an authority (`scheme://host[:port][/path][?query][#fragment]`), read
/// strictly for client ids, redirect URIs and the issuer: visible ASCII only, so what is checked is
/// exactly what a browser or libcurl will use (no IDNA, no whitespace, no backslashes). Foundation's
/// parser decodes and forgives too much for that.
struct StrictURL: Equatable, Sendable {
    /// As written; callers compare it with lower-case names.
    let scheme: String
    /// As written; an IPv6 literal keeps its brackets (`[::1]`).
    let host: String
    let port: Int?
    /// "" or starting with "/".
    let path: String
    let query: String?
    let fragment: String?
    /// A `user[:password]@` part was present.
    let hasUserInfo: Bool

    /// `host[:port]` as written: what a person is shown as where they will be sent.
    var authority: String { port.map { "\(host):\($0)" } ?? host }

    /// `scheme://host[:port]`, lower-cased (an origin, RFC 6454).
    var origin: String { "\(scheme)://\(authority)".lowercased() }

    init?(_ text: String) {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }),
              let separator = text.firstRange(of: "://") else { return nil }
        let scheme = text[..<separator.lowerBound]
        guard let first = scheme.first, first.isLetter,
              scheme.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }) else { return nil }
        var rest = text[separator.upperBound...]
        if let hash = rest.firstIndex(of: "#") {
            fragment = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
        } else {
            fragment = nil
        }
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        } else {
            query = nil
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        path = String(rest[authorityEnd...])
        var authority = rest[..<authorityEnd]
        hasUserInfo = authority.contains("@")
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }

        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            let literal = authority[authority.index(after: authority.startIndex)..<close]
            guard !literal.isEmpty, literal.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
            host = String(authority[...close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { return nil }
                portText = after.dropFirst()
            }
        } else {
            let colon = authority.firstIndex(of: ":")
            let name = authority[..<(colon ?? authority.endIndex)]
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." || $0 == "_" }) else { return nil }
            host = String(name)
            if let colon { portText = authority[authority.index(after: colon)...] }
        }
        if let portText {
            guard (1...5).contains(portText.count), portText.allSatisfy(\.isNumber), let n = Int(portText), (1...65535).contains(n) else {
                return nil
            }
            port = n
        } else {
            port = nil
        }
        self.scheme = String(scheme)
    }

    /// The host without IPv6 brackets, as a resolver wants it.
    var bareHost: String {
        host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
    }

    /// 127.0.0.1, [::1], or localhost: where a native client listens for its redirect (RFC 8252 §7.3).
    var isLoopback: Bool { Self.loopbackHosts.contains(host.lowercased()) }

    static let loopbackHosts = ["127.0.0.1", "[::1]", "localhost"]

    /// A "." or ".." path segment, however its dots are written ("%2e" too).
    var hasDotSegments: Bool {
        path.split(separator: "/").contains {
            [".", ".."].contains($0.replacingIgnoringASCIICase("%2e", with: "."))
        }
    }
}
