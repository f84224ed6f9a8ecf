import MCPJSON

/// One audit record as the journal stores it: magic "MCJ1", payload length and CRC-32C of the
/// payload (both little-endian UInt32), then the payload, the record as compact JSON.
enum JournalFrame {
    static let magic: [UInt8] = Array("MCJ1".utf8)
    static let headerBytes = 12
    /// Far above any record (arguments are capped by the request body limit); a length beyond it is damage.
    static let maxPayloadBytes = 8 << 20

    static func encode(_ r: AuditRecord) -> [UInt8] {
        var o = JSONObject()
        o["t"] = .double(r.time)
        o["id"] = .string(r.requestId)
        o["in"] = JSONValue(r.instance)
        o["te"] = JSONValue(r.tenant)
        o["u"] = JSONValue(r.user)
        o["ca"] = JSONValue(r.clientApp)
        o["m"] = JSONValue(r.method)
        o["to"] = JSONValue(r.tool)
        o["ad"] = JSONValue(r.argumentsDigest)
        o["a"] = JSONValue(r.arguments)
        o["d"] = .string(r.decision)
        o["r"] = JSONValue(r.reason)
        o["hs"] = .integer(r.httpStatus)
        o["us"] = r.upstreamStatus.map { .integer($0) } ?? .null
        o["l"] = .double(r.latencyMilliseconds)
        o["c"] = .bool(r.completed)
        let payload = JSONWriter.serialize(.object(o))
        var frame = magic
        frame.reserveCapacity(headerBytes + payload.count)
        appendLittleEndian(UInt32(payload.count), to: &frame)
        appendLittleEndian(CRC32C.checksum(payload), to: &frame)
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
            guard Array(bytes[at..<at + 4]) == magic else { reading.damage = "no frame magic"; break }
            let length = Int(readLittleEndian(bytes, at + 4))
            guard length <= maxPayloadBytes else { reading.damage = "a frame length of \(length) bytes"; break }
            guard rest - headerBytes >= length else {
                reading.damage = "a torn frame (\(rest - headerBytes) of \(length) payload bytes)"
                break
            }
            let payload = bytes[at + headerBytes..<at + headerBytes + length]
            guard CRC32C.checksum(payload) == readLittleEndian(bytes, at + 8) else { reading.damage = "a frame checksum mismatch"; break }
            guard let record = try? record(from: JSONParser.parse(Array(payload))) else {
                reading.damage = "a frame whose payload is not an audit record"
                break
            }
            reading.records.append(record)
            at += headerBytes + length
            reading.validBytes = at
        }
        return reading
    }

    @inline(never)
    private static func record(from v: JSONValue) throws -> AuditRecord {
        guard let time = v["t"]?.numberValue, let id = v["id"]?.stringValue, let decision = v["d"]?.stringValue,
              let status = v["hs"]?.intValue, let latency = v["l"]?.numberValue, let completed = v["c"]?.boolValue
        else { throw StoreError("a journal frame lacks a required field") }
        return AuditRecord(time: time, requestId: id, instance: v["in"]?.stringValue, tenant: v["te"]?.stringValue,
                           user: v["u"]?.stringValue, clientApp: v["ca"]?.stringValue, method: v["m"]?.stringValue,
                           tool: v["to"]?.stringValue, argumentsDigest: v["ad"]?.stringValue, arguments: v["a"]?.stringValue,
                           decision: decision, reason: v["r"]?.stringValue, httpStatus: status,
                           upstreamStatus: v["us"]?.intValue, latencyMilliseconds: latency, completed: completed)
    }

    private static func appendLittleEndian(_ n: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: n >> UInt32(shift))) }
    }

    private static func readLittleEndian(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << UInt32($1 * 8) }
    }
}
