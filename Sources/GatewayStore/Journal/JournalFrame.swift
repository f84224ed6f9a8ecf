/// One audit record as the journal stores it: magic "MCJ1", payload length and CRC-32C of the
/// payload (both little-endian UInt32), then the payload: time, latency (IEEE 754 bits), HTTP and
/// upstream status (UInt64), completed (one byte), then the text fields, each a UInt32 length
/// (UInt32.max for none) and UTF-8 bytes. All integers little-endian.
enum JournalFrame {
    static let magic: [UInt8] = Array("MCJ1".utf8)
    static let headerBytes = 12
    /// Far above any record (arguments are capped by the request body limit); a length beyond it is damage.
    static let maxPayloadBytes = 8 << 20

    /// The frame of one record, written in place into one buffer of its exact size: the
    /// worker runs this twice per tool call.
    static func encode(_ r: AuditRecord) -> [UInt8] {
        // Field by field, without an array of them.
        func size(_ text: String?) -> Int { 4 + (text?.utf8.count ?? 0) }
        let payloadBytes = fixedPayloadBytes + size(r.requestId) + size(r.decision) + size(r.instance) + size(r.tenant)
            + size(r.user) + size(r.clientApp) + size(r.method) + size(r.tool) + size(r.argumentsDigest) + size(r.arguments)
            + size(r.reason)
        return [UInt8](unsafeUninitializedCapacity: headerBytes + payloadBytes) { buffer, initialized in
            let raw = UnsafeMutableRawPointer(buffer.baseAddress!)
            var at = headerBytes
            func put<T: FixedWidthInteger>(_ n: T) {
                raw.storeBytes(of: n.littleEndian, toByteOffset: at, as: T.self)
                at += MemoryLayout<T>.size
            }
            func text(_ text: String?) {
                guard let utf8 = text?.utf8 else { put(UInt32.max); return }
                put(UInt32(utf8.count))
                if utf8.withContiguousStorageIfAvailable({ (raw + at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }) == nil {
                    for (i, b) in utf8.enumerated() { raw.storeBytes(of: b, toByteOffset: at + i, as: UInt8.self) }
                }
                at += utf8.count
            }
            put(r.time.bitPattern)
            put(r.latencyMilliseconds.bitPattern)
            put(UInt64(bitPattern: Int64(r.httpStatus)))
            put(r.upstreamStatus.map { UInt64(bitPattern: Int64($0)) } ?? noUpstreamStatus)
            put(UInt8(r.completed ? 1 : 0))
            text(r.requestId); text(r.decision); text(r.instance); text(r.tenant); text(r.user); text(r.clientApp)
            text(r.method); text(r.tool); text(r.argumentsDigest); text(r.arguments); text(r.reason)
            for (i, b) in magic.enumerated() { raw.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
            raw.storeBytes(of: UInt32(payloadBytes).littleEndian, toByteOffset: 4, as: UInt32.self)
            let crc = CRC32C.checksum(UnsafeBufferPointer(rebasing: buffer[headerBytes..<headerBytes + payloadBytes]))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self)
            initialized = headerBytes + payloadBytes
        }
    }

    /// Time, latency, HTTP and upstream status, completed.
    private static let fixedPayloadBytes = 8 * 4 + 1

    /// What a journal's bytes hold: the records of its whole frames, and where the first
    /// frame that is not whole or not intact starts (nil when every byte was read).
    struct Reading {
        var records: [AuditRecord] = []
        var validBytes = 0
        /// Why the bytes from `validBytes` on are not a frame: torn, bad checksum, bad length.
        var damage: String?
    }

    static func decode(_ bytes: [UInt8]) -> Reading {
        let scan = scan(bytes)
        let records = bytes.withUnsafeBufferPointer { base in scan.frames.map { $0.record(in: base) } }
        return Reading(records: records, validBytes: scan.validBytes, damage: scan.damage)
    }

    /// `Reading` with each record left where it lies in the bytes (`JournalRecordView`): what
    /// the drain moves, so no field becomes a Swift value on the way into the store.
    struct Scan {
        var frames: [JournalRecordView] = []
        var validBytes = 0
        var damage: String?
    }

    static func scan(_ bytes: [UInt8]) -> Scan {
        var scan = Scan()
        // A record is at least 37 bytes of fixed fields and 44 of text lengths.
        scan.frames.reserveCapacity(bytes.count / (headerBytes + 81) + 1)
        bytes.withUnsafeBufferPointer { base in
            var at = 0
            while at < base.count {
                let rest = base.count - at
                guard rest >= headerBytes else { scan.damage = "a torn frame header (\(rest) bytes)"; break }
                guard base[at] == magic[0], base[at + 1] == magic[1], base[at + 2] == magic[2], base[at + 3] == magic[3] else {
                    scan.damage = "no frame magic"
                    break
                }
                let length = Int(readLittleEndian(base, at + 4))
                guard length <= maxPayloadBytes else { scan.damage = "a frame length of \(length) bytes"; break }
                guard rest - headerBytes >= length else {
                    scan.damage = "a torn frame (\(rest - headerBytes) of \(length) payload bytes)"
                    break
                }
                let payload = UnsafeBufferPointer(rebasing: base[at + headerBytes..<at + headerBytes + length])
                guard CRC32C.checksum(payload) == readLittleEndian(base, at + 8) else { scan.damage = "a frame checksum mismatch"; break }
                guard let frame = record(at: at + headerBytes, length: length, in: base) else {
                    scan.damage = "a frame whose payload is not an audit record"
                    break
                }
                scan.frames.append(frame)
                at += headerBytes + length
                scan.validBytes = at
            }
        }
        return scan
    }

    static let noUpstreamStatus = UInt64.max

    /// The fields of the payload at `start`; nil when it does not hold exactly one record's
    /// fields, or a text field is not UTF-8 (the store takes the bytes as they are).
    @inline(never)
    private static func record(at start: Int, length: Int, in base: UnsafeBufferPointer<UInt8>) -> JournalRecordView? {
        let end = start + length
        var at = start
        let raw = UnsafeRawPointer(base.baseAddress!)
        // One unaligned load a field, not a shift per byte.
        func integer<T: FixedWidthInteger>(_: T.Type) -> T? {
            guard end - at >= MemoryLayout<T>.size else { return nil }
            defer { at += MemoryLayout<T>.size }
            return T(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: T.self))
        }
        func text() -> JournalText? {
            guard let length = integer(UInt32.self) else { return nil }
            if length == UInt32.max { return JournalText.none }
            guard end - at >= Int(length),
                  isUTF8(UnsafeBufferPointer(rebasing: base[at..<at + Int(length)])) else { return nil }
            defer { at += Int(length) }
            return JournalText(start: at, count: Int(length))
        }
        guard let time = integer(UInt64.self), let latency = integer(UInt64.self), let status = integer(UInt64.self),
              let upstream = integer(UInt64.self), let completed = integer(UInt8.self), completed <= 1,
              let requestId = text(), !requestId.isNone, let decision = text(), !decision.isNone,
              let instance = text(), let tenant = text(), let user = text(), let clientApp = text(), let method = text(),
              let tool = text(), let argumentsDigest = text(), let arguments = text(), let reason = text(),
              at == end else { return nil }
        return JournalRecordView(time: Double(bitPattern: time), latencyMilliseconds: Double(bitPattern: latency),
                                 httpStatus: Int64(bitPattern: status),
                                 upstreamStatus: upstream == noUpstreamStatus ? nil : Int64(bitPattern: upstream),
                                 completed: completed == 1, requestId: requestId, decision: decision, instance: instance,
                                 tenant: tenant, user: user, clientApp: clientApp, method: method, tool: tool,
                                 argumentsDigest: argumentsDigest, arguments: arguments, reason: reason)
    }

    /// Eight bytes at a time while they are ASCII (nearly every field); the rest by the standard library.
    private static func isUTF8(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let start = bytes.baseAddress else { return true }
        let raw = UnsafeRawPointer(start)
        var i = 0
        while i + 8 <= bytes.count {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { break }
            i += 8
        }
        while i < bytes.count && bytes[i] < 0x80 { i += 1 }
        return i == bytes.count || String(validating: bytes, as: UTF8.self) != nil
    }

    private static func readLittleEndian(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << UInt32($1 * 8) }
    }
}

/// A text field of a frame: where its UTF-8 bytes lie in the journal's bytes, or none.
struct JournalText {
    let start: Int
    let count: Int
    static let none = JournalText(start: 0, count: -1)
    var isNone: Bool { count < 0 }

    func bytes(in base: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        isNone ? nil : UnsafeBufferPointer(rebasing: base[start..<start + count])
    }

    func string(in base: UnsafeBufferPointer<UInt8>) -> String? {
        bytes(in: base).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// One record of a journal as its frame holds it: the numbers read, the texts left in place.
struct JournalRecordView {
    var time: Double
    var latencyMilliseconds: Double
    var httpStatus: Int64
    var upstreamStatus: Int64?
    var completed: Bool
    var requestId, decision, instance, tenant, user, clientApp, method, tool, argumentsDigest, arguments, reason: JournalText

    func record(in base: UnsafeBufferPointer<UInt8>) -> AuditRecord {
        AuditRecord(time: time, requestId: requestId.string(in: base) ?? "", instance: instance.string(in: base),
                    tenant: tenant.string(in: base), user: user.string(in: base), clientApp: clientApp.string(in: base),
                    method: method.string(in: base), tool: tool.string(in: base),
                    argumentsDigest: argumentsDigest.string(in: base), arguments: arguments.string(in: base),
                    decision: decision.string(in: base) ?? "", reason: reason.string(in: base), httpStatus: Int(httpStatus),
                    upstreamStatus: upstreamStatus.map { Int($0) }, latencyMilliseconds: latencyMilliseconds, completed: completed)
    }
}
