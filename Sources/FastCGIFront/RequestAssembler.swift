import GatewaySupport
import FoundationEssentials
import Glibc
/// The CGI/FastCGI params a request arrives with, read straight from the
/// NAME=VALUE bytes: only the params we use become Strings, since a web server
/// sends two dozen per request and this runs for every one of them.
package struct CGIParams {
    package init() {}

    var method = "GET"
    var requestURI: String?
    var scriptName = ""
    var pathInfo = ""
    var query = ""
    var contentType: String?
    var contentLength: String?
    var remoteAddress: String?
    var headers = HTTPHeaders()

    /// Adds one "NAME=VALUE" entry (a FastCGI param or an environment string).
    mutating func add(entry: UnsafePointer<CChar>) {
        let length = strlen(entry)
        entry.withMemoryRebound(to: UInt8.self, capacity: length) { p in
            let all = UnsafeBufferPointer(start: p, count: length)
            guard let eq = all.firstIndex(of: UInt8(ascii: "=")) else { return }
            add(name: UnsafeBufferPointer(rebasing: all[..<eq]), value: UnsafeBufferPointer(rebasing: all[(eq + 1)...]))
        }
    }

    package mutating func add(name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        func text() -> String { String(decoding: value, as: UTF8.self) }
        if CGIParams.equals(name, "HTTP_", prefix: true) {
            let header = HTTPHeaders.name(fromCGIParam: UnsafeBufferPointer(rebasing: name[5...]))
            // A client must never smuggle CONTENT_* through HTTP_ names: checked on the header name
            // the param becomes, so no spelling of the param (HTTP_CoNTENT_LENGTH) gets past it.
            if header == "content-length" || header == "content-type" { return }
            // A header sent twice arrives as two params from nginx: joined as RFC 9110 §5.3 says
            // (and as Apache does), so no copy silently replaces the other.
            if let earlier = headers.value(normalized: header) {
                headers.setNormalized(header, earlier + (header == "cookie" ? "; " : ", ") + text())
            } else {
                headers.setNormalized(header, text())
            }
        } else if CGIParams.equals(name, "REQUEST_METHOD") { method = text() }
        else if CGIParams.equals(name, "REQUEST_URI") { requestURI = text() }
        else if CGIParams.equals(name, "SCRIPT_NAME") { scriptName = text() }
        else if CGIParams.equals(name, "PATH_INFO") { pathInfo = text() }
        else if CGIParams.equals(name, "QUERY_STRING") { query = text() }
        else if CGIParams.equals(name, "CONTENT_TYPE") { contentType = text() }
        else if CGIParams.equals(name, "CONTENT_LENGTH") { contentLength = text() }
        else if CGIParams.equals(name, "REMOTE_ADDR") { remoteAddress = text() }
    }

    /// Convenience for tests and the CGI environment.
    mutating func add(name: String, value: String) {
        var n = name, v = value
        n.withUTF8 { np in v.withUTF8 { vp in add(name: np, value: vp) } }
    }

    static func equals(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString, prefix: Bool = false) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard prefix ? bytes.count >= n : bytes.count == n, let base = bytes.baseAddress else { return false }
        return memcmp(base, literal.utf8Start, n) == 0
    }
}

/// Builds an `HTTPRequest` from CGI params and a body reader. Shared by the FastCGI
/// and CGI paths so both apply the same limits.
package struct RequestAssembler {
    let maxBodyBytes: Int
    /// The answer to a body over the limit, for the path it was sent to (the handler words it per endpoint).
    let bodyTooLarge: @Sendable (_ path: String, _ detail: String) -> HTTPResponse
    /// The answer to a body that did not arrive before its deadline, likewise worded per endpoint.
    let bodyTimedOut: @Sendable (_ path: String, _ detail: String) -> HTTPResponse

    /// `bodyTooLarge` comes last so that a trailing closure still means it.
    package init(maxBodyBytes: Int,
         bodyTimedOut: @escaping @Sendable (_ path: String, _ detail: String) -> HTTPResponse = { _, detail in .bodyTimedOut(detail) },
         bodyTooLarge: @escaping @Sendable (_ path: String, _ detail: String) -> HTTPResponse = { _, detail in .bodyTooLarge(detail) }) {
        self.maxBodyBytes = maxBodyBytes
        self.bodyTimedOut = bodyTimedOut
        self.bodyTooLarge = bodyTooLarge
    }

    package enum Failure: Error {
        case reject(HTTPResponse)
    }

    /// What `assemble` gives. Not `Result<HTTPRequest, Failure>`: the runtime builds that type's
    /// metadata on first use and finds `Failure: Error` by scanning every conformance record in
    /// the binary (about 0.25 M instructions in each CGI process); this enum's metadata is static.
    package enum Assembly {
        case success(HTTPRequest)
        case failure(Failure)
    }

    /// `readBody(n)` returns up to n bytes, fewer only at end of input, or throws `BodyDeadlinePassed`.
    package func assemble(_ p: CGIParams, readBody: (Int) throws(BodyDeadlinePassed) -> [UInt8]) -> Assembly {
        var headers = p.headers
        if let t = p.contentType, !t.isEmpty { headers.setNormalized("content-type", t) }
        // Route on what the client asked for; SCRIPT_NAME+PATH_INFO when no REQUEST_URI was passed.
        var path: Substring
        if let uri = p.requestURI, !uri.isEmpty {
            path = Self.pathOf(requestURI: uri)
        } else {
            path = Substring(p.scriptName + p.pathInfo)
        }
        if path.isEmpty { path = "/" }

        var body: [UInt8] = []
        if let cl = p.contentLength, !cl.isEmpty {
            guard cl.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(cl) else {
                return .failure(.reject(.error(400, "invalid_request", "CONTENT_LENGTH is not a number")))
            }
            if length > maxBodyBytes {
                return .failure(.reject(bodyTooLarge(String(path), "request body of \(length) bytes exceeds the limit of \(maxBodyBytes) bytes")))
            }
            do { body = try readBody(length) } catch { return .failure(timedOut(path, error)) }
            if body.count < length {
                return .failure(.reject(.error(400, "invalid_request",
                                               "request body ended after \(body.count) of \(length) bytes")))
            }
        } else if p.method == "POST" || p.method == "PUT" || p.method == "PATCH" {
            // No length given (chunked upload): read to the end, but never past the limit.
            do { body = try readBody(maxBodyBytes + 1) } catch { return .failure(timedOut(path, error)) }
            if body.count > maxBodyBytes {
                return .failure(.reject(bodyTooLarge(String(path), "request body exceeds the limit of \(maxBodyBytes) bytes")))
            }
        }
        return .success(HTTPRequest(method: p.method, path: String(path), query: p.query,
                                    headers: headers, body: body, remoteAddress: p.remoteAddress))
    }

    private func timedOut(_ path: Substring, _ late: BodyDeadlinePassed) -> Failure {
        .reject(bodyTimedOut(String(path), "only \(late.received) bytes of it arrived before the deadline"))
    }

    /// The path of a REQUEST_URI without its query. Apache passes an absolute-form request line
    /// (`POST http://host/mcp HTTP/1.1`, which RFC 9112 says servers must accept) through as the
    /// whole URI, so a scheme and authority in front of the path are dropped.
    static func pathOf(requestURI uri: String) -> Substring {
        var rest = Substring(uri)
        if let q = rest.firstIndex(of: "?") { rest = rest[..<q] }
        // The usual origin form starts with "/": one byte decides.
        guard let first = rest.utf8.first, first | 0x20 == UInt8(ascii: "h") else { return rest }
        let head = rest.prefix(8).lowercased()
        guard let scheme = ["http://", "https://"].first(where: { head.hasPrefix($0) }) else { return rest }
        let authorityAndPath = rest.dropFirst(scheme.count)
        return authorityAndPath.firstIndex(of: "/").map { authorityAndPath[$0...] } ?? "/"
    }
}
