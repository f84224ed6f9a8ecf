/// Anything that turns one HTTP request into one HTTP response. The FastCGI and
/// CGI front ends call it; it must not throw or trap for any input.
public protocol RequestHandler: Sendable {
    func respond(to request: HTTPRequest) -> HTTPResponse
}
