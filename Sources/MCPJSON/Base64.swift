/// Strict base64 and base64url codecs: one alphabet per call, no whitespace,
/// padding only where the alphabet uses it.
public enum Base64 {
    private static let std: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let url: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static func table(_ alphabet: [UInt8]) -> [UInt8] {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }
    private static let stdTable = table(std)
    private static let urlTable = table(url)

    public static func encode(_ data: [UInt8], urlSafe: Bool = false, padded: Bool = true) -> String {
        let a = urlSafe ? url : std
        var out = [UInt8]()
        out.reserveCapacity((data.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= data.count {
            let n = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2])
            out += [a[Int(n >> 18 & 63)], a[Int(n >> 12 & 63)], a[Int(n >> 6 & 63)], a[Int(n & 63)]]
            i += 3
        }
        let rest = data.count - i
        if rest == 1 {
            let n = UInt32(data[i]) << 16
            out += [a[Int(n >> 18 & 63)], a[Int(n >> 12 & 63)]]
            if padded { out += [61, 61] }
        } else if rest == 2 {
            let n = UInt32(data[i]) << 16 | UInt32(data[i + 1]) << 8
            out += [a[Int(n >> 18 & 63)], a[Int(n >> 12 & 63)], a[Int(n >> 6 & 63)]]
            if padded { out += [61] }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func encodeURL(_ data: [UInt8]) -> String { encode(data, urlSafe: true, padded: false) }

    /// Decodes base64url without padding (JWS). Any '=' or foreign character fails.
    public static func decodeURL<S: Collection>(_ text: S) -> [UInt8]? where S.Element == UInt8 {
        decode(text, table: urlTable, allowPadding: false)
    }

    /// Decodes standard base64; padding is required when the length needs it.
    public static func decodeStandard<S: Collection>(_ text: S) -> [UInt8]? where S.Element == UInt8 {
        decode(text, table: stdTable, allowPadding: true)
    }

    // The same for the argument types callers pass, so that the decoder is specialised in this
    // module: a generic call from another module runs unspecialised, about 200 instructions a byte.
    public static func decodeURL(_ text: [UInt8]) -> [UInt8]? { decode(text, table: urlTable, allowPadding: false) }
    public static func decodeURL(_ text: ArraySlice<UInt8>) -> [UInt8]? { decode(text, table: urlTable, allowPadding: false) }
    public static func decodeStandard(_ text: [UInt8]) -> [UInt8]? { decode(text, table: stdTable, allowPadding: true) }

    private static func decode<S: Collection>(_ text: S, table: [UInt8], allowPadding: Bool) -> [UInt8]? where S.Element == UInt8 {
        var chars = Array(text)
        if allowPadding {
            guard chars.count % 4 == 0 else { return nil }
            var pad = 0
            while pad < 2, let last = chars.last, last == 61 { chars.removeLast(); pad += 1 }
        }
        if chars.count % 4 == 1 { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count * 3 / 4)
        var acc: UInt32 = 0, bits = 0
        for c in chars {
            let v = table[Int(c)]
            if v == 0xFF { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(acc >> UInt32(bits) & 0xFF))
            }
        }
        // Leftover bits must be zero, or the encoding is not canonical.
        if bits > 0, acc & ((1 << UInt32(bits)) - 1) != 0 { return nil }
        return out
    }
}
