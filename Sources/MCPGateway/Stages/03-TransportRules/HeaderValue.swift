import MCPJSON

/// Decodes mirrored header values (2026-07-28 §Value Encoding): plain visible ASCII,
/// or `=?base64?…?=` carrying UTF-8 that a plain header value cannot hold.
enum HeaderValue {
    static func decode(_ raw: String) -> String? {
        if raw.hasPrefix("=?base64?") && raw.hasSuffix("?=") && raw.utf8.count >= 11 {
            let inner = raw.utf8.dropFirst(9).dropLast(2)
            guard let bytes = Base64.decodeStandard(inner) else { return nil }
            return String(validating: bytes, as: UTF8.self)
        }
        // Plain values: visible ASCII, space and tab only.
        guard raw.utf8.allSatisfy({ ($0 >= 0x20 && $0 <= 0x7E) || $0 == 0x09 }) else { return nil }
        return raw
    }
}
