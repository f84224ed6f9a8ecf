import FastCGIFront
import GatewaySupport

/// FastCGI params and body assembly on arbitrary bytes, read as the records a web server sends
/// (FastCGI 1.0 §3.3: 8-byte header, content, padding). PARAMS content is decoded as name-value
/// pairs (§3.4) into `CGIParams`, STDIN content is the body; a STDIN stream without its closing
/// empty record behaves like a client that stopped sending, so reading past it meets the deadline.
/// Every input gets an answer: a request within the limits or a refusal with an HTTP error status.
private let maxBodyBytes = 4096

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFastCGI(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: start, count: count)
    var paramStream: [UInt8] = [], stdin: [UInt8] = [], stdinClosed = false
    var at = 0
    while at + 8 <= input.count {
        let type = input[at + 1]
        let length = Int(input[at + 4]) << 8 | Int(input[at + 5])
        let padding = Int(input[at + 6])
        let content = input[min(at + 8, input.count)..<min(at + 8 + length, input.count)]
        switch type {
        case 4: paramStream += content          // FCGI_PARAMS
        case 5:                                 // FCGI_STDIN
            if length == 0 { stdinClosed = true } else { stdin += content }
        default: break
        }
        at += 8 + length + padding
    }

    var params = CGIParams()
    var pairs = paramStream[...]
    while let (name, value) = nextPair(&pairs) {
        name.withUnsafeBufferPointer { n in value.withUnsafeBufferPointer { v in params.add(name: n, value: v) } }
    }

    var offset = 0
    let assembler = RequestAssembler(maxBodyBytes: maxBodyBytes)
    let result = assembler.assemble(params) { (n: Int) throws(BodyDeadlinePassed) -> [UInt8] in
        precondition(n >= 0 && n <= maxBodyBytes + 1, "asked for \(n) body bytes, past the limit")
        let available = min(n, stdin.count - offset)
        let chunk = Array(stdin[offset..<offset + available])
        offset += available
        if chunk.count < n && !stdinClosed { throw BodyDeadlinePassed(received: offset) }
        return chunk
    }
    switch result {
    case .success(let request):
        precondition(request.body.count <= maxBodyBytes, "a body over the limit was accepted")
        // (SCRIPT_NAME and PATH_INFO are decoded paths, so only a REQUEST_URI's query is cut off.)
        precondition(!request.path.isEmpty, "the path is empty")
        // CONTENT_LENGTH is the only length; an HTTP_CONTENT_LENGTH param must never pose as a header.
        precondition(request.headers["content-length"] == nil, "a client-sent Content-Length became a header")
    case .failure(.reject(let response)):
        precondition((400..<600).contains(response.status), "a refusal answered \(response.status)")
    }
    return 0
}

/// One FastCGI name-value pair: each length is one byte below 128, else four with the top bit set.
private func nextPair(_ s: inout ArraySlice<UInt8>) -> ([UInt8], [UInt8])? {
    func length() -> Int? {
        guard let first = s.first else { return nil }
        if first < 0x80 { s = s.dropFirst(); return Int(first) }
        guard s.count >= 4 else { return nil }
        let b = Array(s.prefix(4))
        s = s.dropFirst(4)
        return Int(b[0] & 0x7F) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
    }
    guard let nameLength = length(), let valueLength = length(), s.count >= nameLength + valueLength else { return nil }
    let name = Array(s.prefix(nameLength))
    let value = Array(s.dropFirst(nameLength).prefix(valueLength))
    s = s.dropFirst(nameLength + valueLength)
    return (name, value)
}
