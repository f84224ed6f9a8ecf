import MCPGateway

/// The backend cookie jar on arbitrary bytes, one Set-Cookie value per line: absorbing never traps,
/// the jar holds each name once and only live cookies, its Cookie header has only what Set-Cookie
/// may carry, and sealing then reading back gives the same jar. The same bytes are also read as a
/// sealed jar, which must load or throw.
private let now = 1_764_633_600.0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCookieJar(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    var jar = CookieJar()
    jar.absorb(lines, now: now)
    jar.absorb(Array(lines.reversed()), now: now + 1)
    let names = jar.cookies.map(\.name)
    precondition(Set(names).count == names.count, "a cookie name is held twice")
    precondition(jar.cookies.allSatisfy { $0.expiresAt.map { $0 > now + 1 } ?? true }, "an expired cookie is held")
    if let header = jar.header(now: now + 1) {
        precondition(!header.utf8.contains { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ",") }, "the Cookie header carries \(header)")
    }
    do {
        let reread = try CookieJar(serialized: jar.serialized)
        precondition(reread == jar, "seal → read changed the jar")
    } catch {
        fatalError("a sealed jar does not read back: \(error)")
    }
    _ = try? CookieJar(serialized: bytes)
    return 0
}
