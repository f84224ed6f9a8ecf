import COpenSSL

/// The one source of secret random bytes: OpenSSL's CSPRNG (glibc has no arc4random before 2.36).
package enum SecureRandom {
    /// Fills `buffer`; false when the generator could not (the buffer is then not to be used as a secret).
    package static func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        RAND_bytes(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1
    }

    /// `count` fresh random bytes, or nil when the generator failed.
    package static func bytes(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        return out.withUnsafeMutableBytes { fill($0) } ? out : nil
    }
}
