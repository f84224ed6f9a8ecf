import Foundation
import GatewaySupport

/// Answers exactly one request as a plain CGI program: the environment and stdin
/// in, a `Status:` header block and body on stdout. For hosts that only allow CGI.
public struct CGIResponder {
    let answering: RequestAnswering

    public init(handler: RequestHandler, maxBodyBytes: Int) {
        answering = RequestAnswering(handler: handler, maxBodyBytes: maxBodyBytes)
    }

    /// The process exit status: 0, or 1 when the answer could not be written.
    public func respondOnce() -> Int32 {
        answering.answer(params: environ, readBody: CGIResponder.readStdin, write: CGIResponder.writeStdout) ? 0 : 1
    }

    static func writeStdout(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var written = 0
        while written < bytes.count {
            let n = write(1, bytes.baseAddress! + written, bytes.count - written)
            if n <= 0 { if errno == EINTR { continue }; return false }
            written += n
        }
        return true
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
