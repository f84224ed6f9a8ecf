/// Lower-case hexadecimal, the one encoding of digests, request and session ids, and random file names.
package enum Hex {
    private static let digits: StaticString = "0123456789abcdef"

    /// Two digits per byte, in order.
    package static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        String(unsafeUninitializedCapacity: 2 * bytes.count) { buffer in
            var i = 0
            for b in bytes {
                buffer[i] = digits.utf8Start[Int(b >> 4)]
                buffer[i + 1] = digits.utf8Start[Int(b & 0xF)]
                i += 2
            }
            return i
        }
    }

    /// 16 digits, zero-padded, written straight into the string's storage (request ids are on every request's path).
    package static func word(_ word: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            put(word, into: buffer, at: 0)
            return 16
        }
    }

    /// 64 digits of four words, each most significant nibble first (a SHA-256 digest's words
    /// in big-endian order), written straight into the string's storage: no byte array between.
    package static func words(_ w: (UInt64, UInt64, UInt64, UInt64)) -> String {
        String(unsafeUninitializedCapacity: 64) { buffer in
            put(w.0, into: buffer, at: 0)
            put(w.1, into: buffer, at: 16)
            put(w.2, into: buffer, at: 32)
            put(w.3, into: buffer, at: 48)
            return 64
        }
    }

    /// Random digits from the system generator, 16 per 64-bit word.
    package static func random(words: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return String(unsafeUninitializedCapacity: 16 * words) { buffer in
            for w in 0..<words { put(generator.next(), into: buffer, at: 16 * w) }
            return 16 * words
        }
    }

    private static func put(_ word: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
        for i in 0..<16 {
            buffer[start + i] = digits.utf8Start[Int((word >> (60 - 4 * UInt64(i))) & 0xF)]
        }
    }
}
