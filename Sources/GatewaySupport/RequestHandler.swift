/// Anything that turns one HTTP request into one HTTP response. The FastCGI and
/// CGI front ends call it; it must not throw or trap for any input.
public protocol RequestHandler: Sendable {
    func respond(to request: HTTPRequest) -> HTTPResponse
    /// The 413 for a request to `path` whose body is over the front end's limit; the body was
    /// never read, so only the handler knows how that endpoint words an error.
    func bodyTooLarge(path: String, detail: String) -> HTTPResponse
    /// The 408 for a request to `path` whose body did not arrive before the front end's deadline.
    func bodyTimedOut(path: String, detail: String) -> HTTPResponse
}

extension RequestHandler {
    public func bodyTooLarge(path: String, detail: String) -> HTTPResponse { .bodyTooLarge(detail) }
    public func bodyTimedOut(path: String, detail: String) -> HTTPResponse { .bodyTimedOut(detail) }
}
