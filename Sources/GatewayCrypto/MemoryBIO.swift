import COpenSSL

/// Runs `body` on a read-only memory BIO over `bytes`. The BIO borrows the bytes,
/// so it must be read while the buffer is pinned: here, inside the call.
func readingMemoryBIO<T>(_ bytes: [UInt8], _ body: (OpaquePointer?) -> T) -> T {
    bytes.withUnsafeBytes { raw in
        let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
        defer { BIO_free(bio) }
        return body(bio)
    }
}

/// What `write` puts into a fresh memory BIO, or nil when it reports failure.
func writtenToMemoryBIO(_ write: (OpaquePointer) -> Bool) throws(CryptoError) -> [UInt8]? {
    guard let bio = BIO_new(BIO_s_mem()) else { throw .outOfMemory }
    defer { BIO_free(bio) }
    guard write(bio) else { ERR_clear_error(); return nil }
    var out = [UInt8](repeating: 0, count: Int(BIO_ctrl_pending(bio)))
    let n = BIO_read(bio, &out, Int32(out.count))
    return Array(out.prefix(Int(max(n, 0))))
}
