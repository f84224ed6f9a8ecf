/// One audit record as the journal stores it: magic "MCJ1", payload length and CRC-32C of the
/// payload (both little-endian UInt32), then the payload: time, latency (IEEE 754 bits), HTTP and
/// upstream status (UInt64), completed (one byte), then the text fields, each a UInt32 length
/// (UInt32.max for none) and UTF-8 bytes. All integers little-endian.
enum JournalFrame {
    static let magic: [UInt8] = Array("MCJ1".utf8)
    static let headerBytes = 12
    /// Far above any record (arguments are capped by the request body limit); a length beyond it is damage.
    static let maxPayloadBytes = 8 << 20

    static func encode(_ r: AuditRecord) -> [UInt8] {
        var payload: [UInt8] = []
        payload.reserveCapacity(160 + (r.arguments?.utf8.count ?? 0))
        append(r.time.bitPattern, to: &payload)
        append(r.latencyMilliseconds.bitPattern, to: &payload)
        append(UInt64(bitPattern: Int64(r.httpStatus)), to: &payload)
        append(r.upstreamStatus.map { UInt64(bitPattern: Int64($0)) } ?? noUpstreamStatus, to: &payload)
        payload.append(r.completed ? 1 : 0)
        // Field by field, without an array of them: this runs twice per tool call.
        func text(_ text: String?) {
            guard let text else { append(UInt32.max, to: &payload); return }
            append(UInt32(text.utf8.count), to: &payload)
            payload.append(contentsOf: text.utf8)
        }
        text(r.requestId); text(r.decision); text(r.instance); text(r.tenant); text(r.user); text(r.clientApp)
        text(r.method); text(r.tool); text(r.argumentsDigest); text(r.arguments); text(r.reason)
        var frame = magic
        frame.reserveCapacity(headerBytes + payload.count)
        append(UInt32(payload.count), to: &frame)
        append(CRC32C.checksum(payload), to: &frame)
        frame.append(contentsOf: payload)
        return frame
    }

    /// What a journal's bytes hold: the records of its whole frames, and where the first
    /// frame that is not whole or not intact starts (nil when every byte was read).
    struct Reading {
        var records: [AuditRecord] = []
        var validBytes = 0
        /// Why the bytes from `validBytes` on are not a frame: torn, bad checksum, bad length.
        var damage: String?
    }

    static func decode(_ bytes: [UInt8]) -> Reading {
        var reading = Reading()
        var at = 0
        while at < bytes.count {
            let rest = bytes.count - at
            guard rest >= headerBytes else { reading.damage = "a torn frame header (\(rest) bytes)"; break }
            guard bytes[at..<at + 4].elementsEqual(magic) else { reading.damage = "no frame magic"; break }
            let length = Int(readLittleEndian(bytes, at + 4))
            guard length <= maxPayloadBytes else { reading.damage = "a frame length of \(length) bytes"; break }
            guard rest - headerBytes >= length else {
                reading.damage = "a torn frame (\(rest - headerBytes) of \(length) payload bytes)"
                break
            }
            let payload = bytes[at + headerBytes..<at + headerBytes + length]
            guard CRC32C.checksum(payload) == readLittleEndian(bytes, at + 8) else { reading.damage = "a frame checksum mismatch"; break }
            guard let record = record(from: payload) else {
                reading.damage = "a frame whose payload is not an audit record"
                break
            }
            reading.records.append(record)
            at += headerBytes + length
            reading.validBytes = at
        }
        return reading
    }

    private static let noUpstreamStatus = UInt64.max

    /// nil when the payload does not hold exactly one record's fields.
    @inline(never)
    private static func record(from payload: ArraySlice<UInt8>) -> AuditRecord? {
        var at = payload.startIndex
        func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
            let size = MemoryLayout<T>.size
            guard payload.endIndex - at >= size else { return nil }
            var n: T = 0
            for i in 0..<size { n |= T(payload[at + i]) << (i * 8) }
            at += size
            return n
        }
        func text() -> String?? {
            guard let length = integer(UInt32.self) else { return nil }
            if length == UInt32.max { return .some(nil) }
            guard payload.endIndex - at >= Int(length) else { return nil }
            defer { at += Int(length) }
            return .some(String(decoding: payload[at..<at + Int(length)], as: UTF8.self))
        }
        guard let time = integer(UInt64.self), let latency = integer(UInt64.self), let status = integer(UInt64.self),
              let upstream = integer(UInt64.self), let completed = integer(UInt8.self), completed <= 1 else { return nil }
        var texts: [String?] = []
        texts.reserveCapacity(11)
        for _ in 0..<11 {
            guard let t = text() else { return nil }
            texts.append(t)
        }
        guard at == payload.endIndex, let requestId = texts[0], let decision = texts[1] else { return nil }
        return AuditRecord(time: Double(bitPattern: time), requestId: requestId, instance: texts[2], tenant: texts[3],
                           user: texts[4], clientApp: texts[5], method: texts[6], tool: texts[7], argumentsDigest: texts[8],
                           arguments: texts[9], decision: decision, reason: texts[10],
                           httpStatus: Int(Int64(bitPattern: status)),
                           upstreamStatus: upstream == noUpstreamStatus ? nil : Int(Int64(bitPattern: upstream)),
                           latencyMilliseconds: Double(bitPattern: latency), completed: completed == 1)
    }

    private static func append<T: FixedWidthInteger>(_ n: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: n.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func readLittleEndian(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << UInt32($1 * 8) }
    }
}
