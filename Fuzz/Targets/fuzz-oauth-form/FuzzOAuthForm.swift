import MCPGateway

/// The OAuth front's form bodies and query strings on arbitrary bytes: a read succeeds or throws
/// its `Problem`, never traps; what it reads has at most the field cap, no empty name, and reads
/// the same whether it came as a body or as a query string.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOAuthForm(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let asBody: FormBody?
    do { asBody = try FormBody(body: bytes) } catch is FormBody.Problem { asBody = nil } catch {
        fatalError("an error that is not a FormBody.Problem: \(error)")
    }
    guard let asBody else { return 0 }
    precondition(asBody.fields.count <= FormBody.maxFields && !asBody.fields.keys.contains(""))
    let text = String(decoding: bytes, as: UTF8.self)
    let asQuery = try? FormBody(Substring(text))
    precondition(asQuery?.fields == asBody.fields, "a body and the same query string read differently")
    return 0
}
