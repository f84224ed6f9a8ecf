/// CRC-32C (Castagnoli), the checksum each journal frame carries over its payload: a torn or
/// overwritten frame fails it, so a crash's half-written tail is never read as a record.
enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }

    @inline(never)
    static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        // Every frame is checksummed twice (written, then moved): over contiguous bytes the
        // loop runs on raw pointers, without a bounds check per byte.
        if let crc = bytes.withContiguousStorageIfAvailable({ checksum(buffer: $0) }) { return crc }
        return Array(bytes).withUnsafeBufferPointer { checksum(buffer: $0) }
    }

    private static func checksum(buffer bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        table.withUnsafeBufferPointer { table in
            var crc: UInt32 = 0xFFFF_FFFF
            for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
            return crc ^ 0xFFFF_FFFF
        }
    }
}
