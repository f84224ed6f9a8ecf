import COpenSSL

/// A SHA-256 value as four words: cheap to hash and compare as a dictionary key.
public struct SHA256Digest: Hashable, Sendable {
    let w0, w1, w2, w3: UInt64

    init(_ bytes: UnsafeRawBufferPointer) {
        var out = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &out) { o in
            _ = SHA256(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count,
                       o.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        (w0, w1, w2, w3) = out
    }

    public init(_ bytes: [UInt8]) { self = bytes.withUnsafeBytes { SHA256Digest($0) } }

    public var bytes: [UInt8] {
        var v = (w0, w1, w2, w3)
        return withUnsafeBytes(of: &v) { Array($0) }
    }

    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Random bytes from OpenSSL's CSPRNG (glibc has no arc4random before 2.36).
func fillRandom(_ buffer: UnsafeMutableRawBufferPointer) {
    _ = RAND_bytes(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(buffer.count))
}
