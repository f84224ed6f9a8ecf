import MCPGateway
import MCPJSON

/// The executeQueries answer reader on arbitrary bytes (a 200 body): nil or a result that keeps at
/// most the row cap, names each column once, and serialises to JSON that parses back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDAX(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let json = try? JSONParser.parse(bytes)
    for maxRows in [0, 1, 3, 1000] {
        guard let result = DAXResult.read(json, maxRows: maxRows) else { continue }
        precondition(result.rows.count <= maxRows && result.rows.count <= result.returnedRows, "row cap not kept")
        precondition(Set(result.columns).count == result.columns.count, "a column is named twice")
        let written = JSONWriter.serialize(result.json)
        precondition((try? JSONParser.parse(written)) != nil, "the result's JSON does not parse")
    }
    return 0
}
