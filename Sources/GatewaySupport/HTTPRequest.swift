/// Request headers with case-insensitive names, as the web server passed them.
public struct HTTPHeaders: Sendable {
    /// Name and value pairs in arrival order, names unique. A request has a dozen headers or so:
    /// a look-up compares a few short strings, where a dictionary hashed every name (SipHash) on
    /// every insert and look-up, about 3 % of a worker thread's time.
    private var fields: [Field] = []

    /// A struct, not a tuple: an array of tuples copies and destroys its elements through the
    /// runtime's generic tuple witnesses (1.3 % of a worker thread's time in perf).
    private struct Field: Sendable {
        let name: String
        var value: String
    }

    public init() {}

    public init(_ pairs: [String: String]) {
        for (k, v) in pairs { self[k] = v }
    }

    /// Names are stored lower-cased with '-' separators ("mcp-protocol-version").
    public subscript(name: String) -> String? {
        get {
            if let i = index(of: name) { return fields[i].value }
            return HTTPHeaders.isNormalized(name) ? nil : index(of: name.lowercased()).map { fields[$0].value }
        }
        set { setNormalized(name.lowercased(), newValue) }
    }

    /// For a name already lower-cased by the caller: one scan, no test of the name's case.
    package func value(normalized name: String) -> String? { index(of: name).map { fields[$0].value } }

    /// For names already lower-cased by the caller: skips the copy on the hot path.
    package mutating func setNormalized(_ name: String, _ value: String) { setNormalized(name, Optional(value)) }

    private mutating func setNormalized(_ name: String, _ value: String?) {
        switch (index(of: name), value) {
        case (let i?, let value?): fields[i].value = value
        case (let i?, nil): fields.remove(at: i)
        case (nil, let value?): fields.append(Field(name: name, value: value))
        case (nil, nil): break
        }
    }

    private func index(of name: String) -> Int? { fields.firstIndex { $0.name == name } }

    public var names: [String] { fields.map(\.name) }

    package static func isNormalized(_ name: String) -> Bool {
        for b in name.utf8 where b >= 0x41 && b <= 0x5A { return false }
        return true
    }

    /// Turns the part after HTTP_ of a CGI param such as HTTP_MCP_PROTOCOL_VERSION into "mcp-protocol-version".
    package static func name(fromCGIParam param: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: param.count) { out in
            for (i, b) in param.enumerated() {
                out[i] = b == UInt8(ascii: "_") ? UInt8(ascii: "-") : (b >= 0x41 && b <= 0x5A ? b + 32 : b)
            }
            return param.count
        }
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
