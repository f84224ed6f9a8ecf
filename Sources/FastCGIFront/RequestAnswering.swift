import FoundationEssentials
import GatewaySupport

/// The one routine both front ends answer a request with: the params the web server sent
/// (FastCGI params or, for CGI, the process environment) assembled into an `HTTPRequest`
/// under the body limit, handed to the gateway, and the answer written back as a CGI
/// response: a `Status:` header block, then the body.
struct RequestAnswering: Sendable {
    let handler: RequestHandler
    let assembler: RequestAssembler

    init(handler: RequestHandler, maxBodyBytes: Int) {
        self.handler = handler
        self.assembler = RequestAssembler(maxBodyBytes: maxBodyBytes,
                                          bodyTimedOut: { [handler] path, detail in handler.bodyTimedOut(path: path, detail: detail) },
                                          bodyTooLarge: { [handler] path, detail in handler.bodyTooLarge(path: path, detail: detail) })
    }

    /// `params` is a NULL-terminated list of NAME=VALUE strings; `readBody(n)` returns up to n
    /// bytes, or throws `BodyDeadlinePassed`; `write` sends bytes on and says whether all of them went. False when a write failed.
    @discardableResult
    func answer(params list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, readBody: (Int) throws(BodyDeadlinePassed) -> [UInt8],
                write: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        var params = CGIParams()
        if var entry = list {
            while let e = entry.pointee {
                params.add(entry: e)
                entry += 1
            }
        }
        let response: HTTPResponse
        switch assembler.assemble(params, readBody: readBody) {
        case .failure(.reject(let r)): response = r
        case .success(let request): response = handler.respond(to: request)
        }
        guard response.cgiHead().withUnsafeBytes(write) else { return false }
        return response.body.isEmpty || response.body.withUnsafeBytes(write)
    }
}
