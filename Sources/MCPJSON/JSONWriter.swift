/// Serialises JSON straight into bytes: compact, keys in insertion order.
///
/// Every answer and audit record passes through here, so it writes into one raw buffer that
/// grows by doubling: an append is a bounds check and a store, not an array's uniqueness and
/// capacity checks per byte, and a string that needs no escaping is scanned eight bytes at a time
/// and copied in one go.
public struct JSONWriter {
    public static func serialize(_ value: JSONValue) -> [UInt8] {
        var buffer = Buffer(capacity: 1024)
        defer { buffer.release() }
        buffer.write(value)
        return Array(UnsafeBufferPointer(start: buffer.base, count: buffer.count))
    }

    public static func string(_ value: JSONValue) -> String {
        var buffer = Buffer(capacity: 1024)
        defer { buffer.release() }
        buffer.write(value)
        return String(decoding: UnsafeBufferPointer(start: buffer.base, count: buffer.count), as: UTF8.self)
    }

    /// One JSON text written piece by piece, for an answer that splices in JSON serialised once
    /// (a tool result's structured content, which is also its text): the caller writes a valid
    /// JSON text, this only writes each piece faithfully.
    public static func serialize(_ build: (inout Writer) -> Void) -> [UInt8] {
        var writer = Writer(buffer: Buffer(capacity: 1024))
        defer { writer.buffer.release() }
        build(&writer)
        return Array(UnsafeBufferPointer(start: writer.buffer.base, count: writer.buffer.count))
    }

    public struct Writer {
        fileprivate var buffer: Buffer

        /// Bytes of JSON syntax, copied as they are.
        public mutating func literal(_ s: StaticString) { buffer.literal(s) }
        /// A value, serialised as `serialize(_:)` would.
        public mutating func value(_ v: JSONValue) { buffer.write(v) }
        /// JSON already serialised (by `serialize(_:)`), copied as it is.
        public mutating func json(_ bytes: [UInt8]) { bytes.withUnsafeBufferPointer { buffer.raw($0) } }
        /// A JSON string whose content is these UTF-8 bytes, escaped as `.string` would be.
        public mutating func string(utf8 bytes: [UInt8]) {
            buffer.literal("\"")
            bytes.withUnsafeBufferPointer { buffer.writeEscaped($0) }
            buffer.literal("\"")
        }
    }

    /// The bytes written so far, owned by whoever serialises; released once the result is copied out.
    struct Buffer {
        private(set) var base: UnsafeMutablePointer<UInt8>
        private(set) var count = 0
        private var capacity: Int

        init(capacity: Int) {
            self.capacity = capacity
            base = .allocate(capacity: capacity)
        }

        func release() { base.deallocate() }

        @inline(__always)
        private mutating func reserve(_ n: Int) {
            if count + n > capacity { grow(to: count + n) }
        }

        @inline(never)
        private mutating func grow(to needed: Int) {
            var newCapacity = capacity * 2
            while newCapacity < needed { newCapacity *= 2 }
            let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
            grown.update(from: base, count: count)
            base.deallocate()
            base = grown
            capacity = newCapacity
        }

        @inline(__always)
        private mutating func byte(_ b: UInt8) {
            reserve(1)
            base[count] = b
            count += 1
        }

        fileprivate mutating func raw(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let start = bytes.baseAddress, !bytes.isEmpty else { return }
            reserve(bytes.count)
            (base + count).update(from: start, count: bytes.count)
            count += bytes.count
        }

        fileprivate mutating func literal(_ s: StaticString) {
            raw(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }

        mutating func write(_ value: JSONValue) {
            switch value {
            case .null: literal("null")
            case .bool(let b): b ? literal("true") : literal("false")
            case .integer(let i): writeInteger(i)
            case .double(let d): writeDouble(d)
            case .string(let s): writeString(s)
            case .array(let items):
                byte(UInt8(ascii: "["))
                var first = true
                for item in items {
                    if !first { byte(UInt8(ascii: ",")) }
                    first = false
                    write(item)
                }
                byte(UInt8(ascii: "]"))
            case .object(let o):
                byte(UInt8(ascii: "{"))
                var first = true
                for (k, v) in o {
                    if !first { byte(UInt8(ascii: ",")) }
                    first = false
                    writeString(k)
                    byte(UInt8(ascii: ":"))
                    write(v)
                }
                byte(UInt8(ascii: "}"))
            }
        }

        /// Decimal digits, no String per number (`DecimalDigits.withDigits`).
        private mutating func writeInteger(_ i: Int) {
            DecimalDigits.withDigits(of: i) { raw($0) }
        }

        private mutating func writeDouble(_ d: Double) {
            guard d.isFinite else { literal("null"); return }
            if d.rounded() == d, abs(d) < 9.007_199_254_740_992e15 {
                writeInteger(Int(d))
            } else {
                var text = "\(d)"
                text.withUTF8 { raw($0) }
            }
        }

        private static let hex: StaticString = "0123456789abcdef"

        mutating func writeString(_ s: String) {
            byte(UInt8(ascii: "\""))
            // A native string lends its bytes without a copy; others (bridged) are made native first.
            if s.utf8.withContiguousStorageIfAvailable({ writeEscaped($0) }) == nil {
                var s = s
                s.withUTF8 { writeEscaped($0) }
            }
            byte(UInt8(ascii: "\""))
        }

        /// The high bit of each of the eight bytes of `w` that is a quote, a backslash, a control
        /// character or DEL, at least of the first such byte: the classic zero-byte test may also
        /// flag a byte above a true hit (a borrow), never one below, so the lowest bit set is exact.
        /// Bytes of 0x80 and above are never flagged.
        @inline(__always)
        private static func escapeMask(_ w: UInt64) -> UInt64 {
            let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
            func hasZero(_ v: UInt64) -> UInt64 { (v &- ones) & ~v & highs }
            let control = (w &- 0x2020_2020_2020_2020) & ~w & highs
            return control | hasZero(w ^ 0x2222_2222_2222_2222) | hasZero(w ^ 0x5C5C_5C5C_5C5C_5C5C)
                | hasZero(w ^ 0x7F7F_7F7F_7F7F_7F7F)
        }

        @inline(__always)
        private static func needsEscape(_ b: UInt8) -> Bool { b == 0x22 || b == 0x5C || b < 0x20 || b == 0x7F }

        /// Written straight into the buffer, a chunk of input at a time with room for its worst
        /// case (six bytes a byte). Eight bytes are one load and one store; when some of them need
        /// escaping, the clean ones before the first are kept from that store and the escape is
        /// written after them, so quote-dense text (JSON inside a string, as a tool result's
        /// `text`) costs a few operations per escape, not a test per byte.
        fileprivate mutating func writeEscaped(_ utf8: UnsafeBufferPointer<UInt8>) {
            guard let start = utf8.baseAddress else { return }
            let n = utf8.count
            var i = 0
            while i < n {
                let chunkEnd = min(n, i + 4096)
                reserve((chunkEnd - i) * 6)
                var out = base + count
                while i < chunkEnd {
                    if i + 8 <= chunkEnd {
                        let word = UnsafeRawPointer(start + i).loadUnaligned(as: UInt64.self)
                        // Eight bytes fit: at least 6 x 8 bytes of room remain for these eight.
                        UnsafeMutableRawPointer(out).storeBytes(of: word, as: UInt64.self)
                        let mask = Self.escapeMask(word)
                        if mask == 0 {
                            out += 8
                            i += 8
                            continue
                        }
                        let clean = mask.trailingZeroBitCount >> 3
                        out += clean
                        i += clean
                    } else if !Self.needsEscape(start[i]) {
                        out.pointee = start[i]
                        out += 1
                        i += 1
                        continue
                    }
                    // start[i] needs escaping.
                    let b = start[i]
                    i += 1
                    out.pointee = 0x5C
                    switch b {
                    case UInt8(ascii: "\""): out[1] = 0x22; out += 2
                    case UInt8(ascii: "\\"): out[1] = 0x5C; out += 2
                    case 0x0A: out[1] = UInt8(ascii: "n"); out += 2
                    case 0x0D: out[1] = UInt8(ascii: "r"); out += 2
                    case 0x09: out[1] = UInt8(ascii: "t"); out += 2
                    default:
                        let digits = Self.hex.utf8Start
                        out[1] = UInt8(ascii: "u")
                        out[2] = 0x30
                        out[3] = 0x30
                        out[4] = digits[Int(b >> 4)]
                        out[5] = digits[Int(b & 0xF)]
                        out += 6
                    }
                }
                count = out - base
            }
        }
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { JSONWriter.string(self) }
}

/// An integer's decimal digits without building a String: the JSON writer's numbers and the
/// FastCGI response head's status and length.
public enum DecimalDigits {
    /// The digits (with a leading `-` for a negative number), written backwards into a stack buffer.
    public static func withDigits<R>(of i: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        var magnitude = i.magnitude
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { digits in
            var n = 0
            repeat {
                digits[20 - n] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                n += 1
            } while magnitude > 0
            if i < 0 {
                digits[20 - n] = UInt8(ascii: "-")
                n += 1
            }
            return body(UnsafeBufferPointer(rebasing: digits[(21 - n)...]))
        }
    }

    /// The digits appended to `out`.
    public static func append(_ i: Int, to out: inout [UInt8]) {
        withDigits(of: i) { out.append(contentsOf: $0) }
    }
}
