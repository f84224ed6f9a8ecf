import FoundationEssentials
import MCPJSON

/// One HTTP response, written back as a CGI `Status:` header block plus body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ status: Int, _ value: JSONValue, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status,
                     headers: [("Content-Type", "application/json")] + headers,
                     body: JSONWriter.serialize(value))
    }

    /// A plain JSON error body for non-MCP endpoints: {"error": code, "error_description": text}.
    public static func error(_ status: Int, _ code: String, _ description: String,
                             headers: [(String, String)] = []) -> HTTPResponse {
        json(status, ["error": .string(code), "error_description": .string(description)], headers: headers)
    }

    /// The plain 413 of endpoints that have no error format of their own.
    public static func bodyTooLarge(_ detail: String) -> HTTPResponse {
        error(413, "request_too_large", detail)
    }

    /// The plain 408 of endpoints that have no error format of their own.
    public static func bodyTimedOut(_ detail: String) -> HTTPResponse {
        error(408, "request_timeout", detail)
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.equalsIgnoringASCIICase(name) }?.1
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 408: return "Request Timeout"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status \(status)"
        }
    }

    /// The CGI/FastCGI response head: "Status: …" then headers, then a blank line. Written
    /// as bytes, the numbers digit by digit: no string is built for any of it.
    public func cgiHead() -> [UInt8] {
        var head: [UInt8] = []
        head.reserveCapacity(160)
        head.append(contentsOf: "Status: ".utf8)
        DecimalDigits.append(status, to: &head)
        head.append(UInt8(ascii: " "))
        head.append(contentsOf: HTTPResponse.reason(status).utf8)
        head.append(contentsOf: "\r\n".utf8)
        for (k, v) in headers {
            head.append(contentsOf: k.utf8)
            head.append(contentsOf: ": ".utf8)
            head.append(contentsOf: v.utf8)
            head.append(contentsOf: "\r\n".utf8)
        }
        head.append(contentsOf: "Content-Length: ".utf8)
        DecimalDigits.append(body.count, to: &head)
        head.append(contentsOf: "\r\n\r\n".utf8)
        return head
    }
}
