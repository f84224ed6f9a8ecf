import MCPGateway
import MCPJSON

/// Backend path templates on arbitrary bytes: the first line is a template, the rest a JSON object
/// of arguments. A template either is refused or renders; a rendered path starts with "/", keeps
/// one segment per template segment (no argument can add a "/" or a dot segment), and carries no
/// raw control character, space, "?" or "#".
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPathTemplate(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let newline = bytes.firstIndex(of: 0x0A) ?? bytes.count
    let templateText = String(decoding: bytes[..<newline], as: UTF8.self)
    let rest = newline < bytes.count ? Array(bytes[(newline + 1)...]) : []
    let arguments = (try? JSONParser.parse(rest))?.objectValue ?? JSONObject()

    _ = QueryString.render(arguments.keys, from: arguments)
    guard let template = try? PathTemplate(templateText) else { return 0 }
    precondition(template.description == templateText)
    guard let path = try? template.render(arguments) else { return 0 }
    precondition(path.hasPrefix("/"), "rendered path \(path) does not start with /")
    precondition(!path.utf8.contains { $0 < 0x21 || $0 == 0x7F || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") },
                 "rendered path carries a raw space, control character, ? or #")
    let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    precondition(!segments.contains { $0 == "." || $0 == ".." }, "rendered path has a dot segment")
    let templateSegments = templateText.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    precondition(segments.count == templateSegments.count || (templateSegments.count == 1 && segments.count == 1),
                 "an argument changed the number of path segments")
    return 0
}
