/// HMAC-SHA256 (RFC 2104) over this target's SHA-256, and a comparison that takes the same
/// time whatever the bytes: for CSRF tokens, signed cookies and secret digests.
package enum HMACSHA256 {
    package static func authenticate(_ message: [UInt8], key: [UInt8]) -> [UInt8] {
        var k = key.count > 64 ? SHA256Digest(key).bytes : key
        k += [UInt8](repeating: 0, count: 64 - k.count)
        let inner = SHA256Digest(k.map { $0 ^ 0x36 } + message).bytes
        return SHA256Digest(k.map { $0 ^ 0x5c } + inner).bytes
    }

    /// True when `mac` is the tag of `message`, compared in constant time.
    package static func isValid(_ mac: [UInt8], for message: [UInt8], key: [UInt8]) -> Bool {
        ConstantTime.equal(mac, authenticate(message, key: key))
    }
}

package enum ConstantTime {
    /// Equal lengths and bytes, without an early exit on the first difference.
    package static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
