/// Lower-case hex, the one encoder of the project: digests, request and session ids.
public enum Hex {
    private static let digits: StaticString = "0123456789abcdef"

    /// 16 lower-case hex digits, zero-padded; no intermediate allocations (request ids are hot).
    public static func word(_ word: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for i in 0..<16 {
                buffer[i] = digits.utf8Start[Int((word >> (60 - 4 * UInt64(i))) & 0xF)]
            }
            return 16
        }
    }

    /// Two digits per byte.
    public static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            var i = 0
            for b in bytes {
                buffer[i] = digits.utf8Start[Int(b >> 4)]
                buffer[i + 1] = digits.utf8Start[Int(b & 0xF)]
                i += 2
            }
            return i
        }
    }

    /// Random hex from the system generator: 16 digits per 64-bit word.
    public static func random(words: Int) -> String {
        var g = SystemRandomNumberGenerator()
        var s = ""
        s.reserveCapacity(16 * words)
        for _ in 0..<words { s += word(g.next()) }
        return s
    }
}
