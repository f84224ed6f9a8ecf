/// RFC 3986 percent-encoding, for path segments, query strings and token-endpoint forms alike.
package enum URLEncoding {
    /// Everything but the unreserved characters, percent-encoded.
    package static func percentEncode(_ s: String) -> String {
        var out = [UInt8]()
        let hex = Array("0123456789ABCDEF".utf8)
        for b in s.utf8 {
            if isUnreserved(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    package static func isUnreserved(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == UInt8(ascii: "-") || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "~")
    }

    /// `name=value&…` (application/x-www-form-urlencoded, with the unreserved characters kept as they are).
    package static func form(_ pairs: [(String, String)]) -> String {
        pairs.map { name, value in percentEncode(name) + "=" + percentEncode(value) }.joined(separator: "&")
    }
}
