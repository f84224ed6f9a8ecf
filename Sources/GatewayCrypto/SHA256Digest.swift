import GatewaySupport
import COpenSSL
import GatewaySupport

/// A SHA-256 value as four words: cheap to hash and compare as a dictionary key.
package struct SHA256Digest: Hashable, Sendable {
    package let w0, w1, w2, w3: UInt64

    package init(_ bytes: UnsafeRawBufferPointer) {
        var out = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &out) { o in
            let md = o.baseAddress!.assumingMemoryBound(to: UInt8.self)
            // With the algorithm fetched once: SHA256() fetches it on every call (a few thousand
            // instructions, more than hashing a short key). The one-shot call stays as the fallback.
            if EVP_Digest(bytes.baseAddress, bytes.count, md, nil, sha256Algorithm, nil) != 1 {
                _ = SHA256(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, md)
            }
        }
        (w0, w1, w2, w3) = out
    }

    package init(_ bytes: [UInt8]) { self = bytes.withUnsafeBytes { SHA256Digest($0) } }

    /// The 32 digest bytes in order.
    package var bytes: [UInt8] {
        var v = (w0, w1, w2, w3)
        return withUnsafeBytes(of: &v) { Array($0) }
    }

    /// Lower-case hex of `bytes`.
    package var hex: String { Hex.words((w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)) }
}

/// Fetched once: implicit fetches per call cost measurable time in OpenSSL 3.
nonisolated(unsafe) let sha256Algorithm: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)
