import GatewaySupport
import Foundation

/// Answers exactly one request as a plain CGI program: the environment and stdin
/// in, a `Status:` header block and body on stdout. For hosts that only allow CGI.
public struct CGIResponder {
    let handler: RequestHandler
    let maxBodyBytes: Int

    public init(handler: RequestHandler, maxBodyBytes: Int) {
        self.handler = handler
        self.maxBodyBytes = maxBodyBytes
    }

    public func respondOnce() -> Int32 {
        var params = CGIParams()
        var env = environ
        while let entry = env.pointee {
            params.add(entry: entry)
            env += 1
        }
        let response: HTTPResponse
        switch RequestAssembler(maxBodyBytes: maxBodyBytes).assemble(params, readBody: CGIResponder.readStdin) {
        case .failure(.reject(let r)): response = r
        case .success(let request): response = handler.respond(to: request)
        }
        let bytes = response.cgiHead() + response.body
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(1, $0.baseAddress! + written, bytes.count - written) }
            if n <= 0 { if errno == EINTR { continue }; return 1 }
            written += n
        }
        return 0
    }

    static func readStdin(upTo limit: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: limit)
        var filled = 0
        while filled < limit {
            let n = out.withUnsafeMutableBytes { read(0, $0.baseAddress! + filled, limit - filled) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            filled += n
        }
        out.removeSubrange(filled...)
        return out
    }
}
