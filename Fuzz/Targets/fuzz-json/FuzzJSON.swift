import MCPJSON

/// The JSON parser on arbitrary bytes: a parse succeeds or throws, and what it accepts survives
/// write → parse with the same value (numbers compared by value: the writer prints 1.0 as 1)
/// and writes back to the same bytes the second time.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    // The limits the gateway uses for a request body and for a token's header and payload.
    for limits in [JSONLimits.default, JSONLimits(maxDepth: 8, maxBytes: 16 << 10, maxStringBytes: 8 << 10)] {
        guard let value = try? JSONParser.parse(bytes, limits: limits) else { continue }
        let written = JSONWriter.serialize(value)
        let reread: JSONValue
        do { reread = try JSONParser.parse(written, limits: .default) } catch {
            fatalError("the writer's output does not parse: \(error)")
        }
        precondition(sameValue(value, reread), "write → parse changed the value")
        precondition(JSONWriter.serialize(reread) == written, "writing the reread value gave other bytes")
        precondition(JSONWriter.string(value) == String(decoding: written, as: UTF8.self))
    }
    return 0
}

private func sameValue(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.integer(let x), .double(let y)), (.double(let y), .integer(let x)): return Double(x) == y
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy(sameValue)
    case (.object(let x), .object(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && sameValue($0.value, $1.value) }
    default: return a == b
    }
}
