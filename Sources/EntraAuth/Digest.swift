import COpenSSL
import GatewaySupport

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

    public var hex: String { Hex.encode(bytes) }
}
