/// Where the FastCGI responder listens.
public enum ListenAddress: Equatable, Sendable {
    /// The socket the spawner left on fd 0 (mod_fcgid, spawn-fcgi, systemd with StandardInput=socket).
    case inherited
    case unix(path: String)
    case tcp(host: String, port: Int)

    /// Parses `unix:/run/mcp-fcgi.sock`, `/run/mcp-fcgi.sock`, `127.0.0.1:9000` or `:9000`.
    public init(parsing text: String) throws {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/") else { throw ListenAddressError(text: text, reason: "a unix socket path must be absolute") }
            self = .unix(path: path)
        } else if text.hasPrefix("/") {
            self = .unix(path: text)
        } else if let colon = text.lastIndex(of: ":") {
            let host = String(text[..<colon])
            guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
                throw ListenAddressError(text: text, reason: "the port must be a number from 1 to 65535")
            }
            self = .tcp(host: host, port: port)
        } else {
            throw ListenAddressError(text: text, reason: "use unix:/path/to.sock or HOST:PORT")
        }
    }

    /// The form libfcgi's FCGX_OpenSocket expects.
    var libfcgiPath: String {
        switch self {
        case .inherited: return ""
        case .unix(let path): return path
        case .tcp(let host, let port): return "\(host):\(port)"
        }
    }
}

public struct ListenAddressError: Error, CustomStringConvertible {
    public let text: String
    public let reason: String
    public var description: String { "invalid listen address '\(text)': \(reason)" }
}
