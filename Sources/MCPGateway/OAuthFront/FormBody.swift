/// `application/x-www-form-urlencoded` bodies and URL query strings, read strictly: every
/// name and value percent-decoded as UTF-8, `+` as a space, and a parameter given twice is an
/// error (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
package struct FormBody: Sendable {
    package private(set) var fields: [String: String] = [:]

    package enum Problem: Error, Equatable, CustomStringConvertible {
        case malformedEncoding(String)
        case repeated(String)
        case tooLarge

        package var description: String {
            switch self {
            case .malformedEncoding(let where_): return "the parameters are not validly percent-encoded UTF-8 (\(where_))"
            case .repeated(let name): return "the parameter \(name) is given more than once"
            case .tooLarge: return "too many parameters"
            }
        }
    }

    /// At most this many parameters; OAuth requests carry about a dozen.
    package static let maxFields = 64

    package init(_ text: Substring) throws {
        guard !text.isEmpty else { return }
        let pairs = text.split(separator: "&", omittingEmptySubsequences: true)
        guard pairs.count <= Self.maxFields else { throw Problem.tooLarge }
        for pair in pairs {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0])
            let value = parts.count > 1 ? try Self.decode(parts[1]) : ""
            guard !name.isEmpty else { continue }
            guard fields[name] == nil else { throw Problem.repeated(Self.printable(name)) }
            fields[name] = value
        }
    }

    package init(body: [UInt8]) throws {
        guard let text = String(validating: body, as: UTF8.self) else { throw Problem.malformedEncoding("body") }
        try self.init(Substring(text))
    }

    subscript(_ name: String) -> String? { fields[name] }

    /// A present, non-empty value.
    func value(_ name: String) -> String? {
        guard let v = fields[name], !v.isEmpty else { return nil }
        return v
    }

    static func decode(_ s: Substring) throws -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = s.utf8.makeIterator()
        while let b = it.next() {
            switch b {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let h = it.next().flatMap(hexValue), let l = it.next().flatMap(hexValue) else {
                    throw Problem.malformedEncoding("a % not followed by two hex digits")
                }
                bytes.append(h << 4 | l)
            default: bytes.append(b)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Problem.malformedEncoding("not UTF-8") }
        // Control characters have no place in any OAuth parameter and would forge log lines.
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw Problem.malformedEncoding("a control character")
        }
        return text
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: return b - 0x30
        case 0x41...0x46: return b - 0x41 + 10
        case 0x61...0x66: return b - 0x61 + 10
        default: return nil
        }
    }

    /// For error messages: names are echoed only as short visible ASCII.
    static func printable(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(40).map { $0.value > 0x20 && $0.value < 0x7F ? $0 : "?" }))
    }
}
