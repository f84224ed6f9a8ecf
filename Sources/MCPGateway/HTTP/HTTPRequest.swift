/// Request headers with case-insensitive names, as the web server passed them.
public struct HTTPHeaders: Sendable {
    private var storage: [String: String] = [:]

    public init() {}

    public init(_ pairs: [String: String]) {
        for (k, v) in pairs { self[k] = v }
    }

    /// Names are stored lower-cased with '-' separators ("mcp-protocol-version").
    public subscript(name: String) -> String? {
        get { storage[name.lowercased()] }
        set { storage[name.lowercased()] = newValue }
    }

    public var names: [String] { Array(storage.keys) }

    /// Turns a CGI/FastCGI param name such as HTTP_MCP_PROTOCOL_VERSION into "mcp-protocol-version".
    static func name(fromCGIParam param: Substring) -> String {
        var out = ""
        out.reserveCapacity(param.count)
        for scalar in param.unicodeScalars {
            switch scalar {
            case "_": out.append("-")
            case "A"..."Z": out.unicodeScalars.append(UnicodeScalar(scalar.value + 32)!)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// One HTTP request as the web server handed it to us over FastCGI or CGI.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The URL path without the query string, as the client sent it (REQUEST_URI).
    public var path: String
    public var query: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    public var remoteAddress: String?

    public init(method: String, path: String, query: String = "", headers: HTTPHeaders = HTTPHeaders(),
                body: [UInt8] = [], remoteAddress: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }
}
