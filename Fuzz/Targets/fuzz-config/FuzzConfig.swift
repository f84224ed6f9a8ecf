import MCPGateway

/// The config reader on arbitrary bytes (a config file's contents): it loads or throws, never traps,
/// and a config it accepts has at least one instance and a usable body limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let config = try? ProcessConfig.parse(contents: bytes, path: "fuzz.json", environment: [:]) else { return 0 }
    precondition(!config.instances.isEmpty, "an accepted config has no instance")
    precondition(config.maxBodyBytes > 0, "an accepted config allows no request body")
    return 0
}
