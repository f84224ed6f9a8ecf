/// Builds an `HTTPRequest` from CGI-style params (FastCGI params or a CGI
/// process environment) and a body reader. Shared by the FastCGI and CGI paths
/// so both apply the same limits.
struct RequestAssembler {
    let maxBodyBytes: Int

    enum Failure: Error {
        case reject(HTTPResponse)
    }

    /// `params` yields NAME=VALUE pairs; `readBody(n)` returns up to n bytes, fewer only at end of input.
    func assemble(params: [(Substring, Substring)], readBody: (Int) -> [UInt8]) -> Result<HTTPRequest, Failure> {
        var method = "GET", requestURI: Substring?, scriptName: Substring = "", pathInfo: Substring = ""
        var query: Substring = "", contentLength: Substring?, remote: Substring?
        var headers = HTTPHeaders()
        for (name, value) in params {
            if name.hasPrefix("HTTP_") {
                // A web server must never let a client smuggle CONTENT_* through HTTP_ names.
                if name == "HTTP_CONTENT_LENGTH" || name == "HTTP_CONTENT_TYPE" { continue }
                headers[HTTPHeaders.name(fromCGIParam: name.dropFirst(5))] = String(value)
                continue
            }
            switch name {
            case "REQUEST_METHOD": method = String(value)
            case "REQUEST_URI": requestURI = value
            case "SCRIPT_NAME": scriptName = value
            case "PATH_INFO": pathInfo = value
            case "QUERY_STRING": query = value
            case "CONTENT_TYPE": if !value.isEmpty { headers["content-type"] = String(value) }
            case "CONTENT_LENGTH": contentLength = value
            case "REMOTE_ADDR": remote = value
            default: break
            }
        }
        // Route on what the client asked for; SCRIPT_NAME+PATH_INFO when no REQUEST_URI was passed.
        let path: Substring
        if let uri = requestURI, !uri.isEmpty {
            path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? uri
        } else {
            path = Substring(String(scriptName) + String(pathInfo))
        }

        var body: [UInt8] = []
        if let cl = contentLength, !cl.isEmpty {
            guard let length = Int(cl), length >= 0, cl.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                return .failure(.reject(.error(400, "invalid_request", "CONTENT_LENGTH is not a number")))
            }
            if length > maxBodyBytes {
                return .failure(.reject(.error(413, "request_too_large",
                                               "request body of \(length) bytes exceeds the limit of \(maxBodyBytes) bytes")))
            }
            body = readBody(length)
            if body.count < length {
                return .failure(.reject(.error(400, "invalid_request",
                                               "request body ended after \(body.count) of \(length) bytes")))
            }
        } else if method == "POST" || method == "PUT" || method == "PATCH" {
            // No length given (chunked upload): read to the end, but never past the limit.
            body = readBody(maxBodyBytes + 1)
            if body.count > maxBodyBytes {
                return .failure(.reject(.error(413, "request_too_large",
                                               "request body exceeds the limit of \(maxBodyBytes) bytes")))
            }
        }
        headers["content-length"] = nil
        return .success(HTTPRequest(method: method, path: String(path.isEmpty ? "/" : path), query: String(query),
                                    headers: headers, body: body, remoteAddress: remote.map(String.init)))
    }

    /// Splits "NAME=VALUE" C strings into pairs.
    static func split(_ entry: String) -> (Substring, Substring)? {
        guard let eq = entry.firstIndex(of: "=") else { return nil }
        return (entry[..<eq], entry[entry.index(after: eq)...])
    }
}
