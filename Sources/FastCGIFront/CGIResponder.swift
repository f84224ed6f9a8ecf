import FoundationEssentials
import Glibc
import GatewaySupport

/// Answers exactly one request as a plain CGI program: the environment and stdin
/// in, a `Status:` header block and body on stdout. For hosts that only allow CGI.
public struct CGIResponder {
    let answering: RequestAnswering

    let bodyTimeoutSeconds: Double

    public init(handler: RequestHandler, maxBodyBytes: Int, bodyTimeoutSeconds: Double = 10) {
        answering = RequestAnswering(handler: handler, maxBodyBytes: maxBodyBytes)
        self.bodyTimeoutSeconds = bodyTimeoutSeconds
    }

    /// The process exit status: 0, or 1 when the answer could not be written.
    public func respondOnce() -> Int32 {
        let deadline = BodyDeadline(seconds: bodyTimeoutSeconds)
        var consumed = 0
        let written = answering.answer(params: environ, readBody: { n throws(BodyDeadlinePassed) in
            let bytes = try CGIResponder.read(fd: 0, upTo: n, by: deadline)
            consumed += bytes.count
            return bytes
        }, write: CGIResponder.writeStdout)
        // A program that exits with body bytes unread resets the web server's socket to it, and the
        // answer already written is lost with it (mod_cgid sends a truncated response): the usual
        // case is a body refused as too large. The rest is read and dropped, within the same deadline.
        if let declared = getenv("CONTENT_LENGTH").flatMap({ Int(String(cString: $0)) }), declared > consumed {
            CGIResponder.discard(fd: 0, count: declared - consumed, by: deadline)
        }
        return written ? 0 : 1
    }

    /// Reads and drops up to `count` bytes from `fd`, stopping early at end of input or at the
    /// deadline; how many it dropped (a read the deadline cut short is not counted).
    @discardableResult
    static func discard(fd: Int32, count: Int, by deadline: BodyDeadline) -> Int {
        var left = count
        while left > 0, let chunk = try? read(fd: fd, upTo: min(left, 1 << 16), by: deadline), !chunk.isEmpty {
            left -= chunk.count
        }
        return count - left
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

    /// Up to `limit` bytes from `fd` (stdin: a pipe or socket from the web server), fewer only at
    /// end of input. Each read waits in poll() for what is left of the deadline, so a stalled
    /// client costs this process no longer than that.
    static func read(fd: Int32, upTo limit: Int, by deadline: BodyDeadline) throws(BodyDeadlinePassed) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: limit)
        var filled = 0
        while filled < limit {
            guard let wait = deadline.remainingMilliseconds else { throw BodyDeadlinePassed(received: filled) }
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let polled = poll(&ready, 1, Int32(min(wait, Int(Int32.max))))
            if polled < 0 && errno == EINTR { continue }
            if polled == 0 { throw BodyDeadlinePassed(received: filled) }
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, limit - filled) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            filled += n
        }
        out.removeSubrange(filled...)
        return out
    }
}
