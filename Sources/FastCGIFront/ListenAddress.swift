import FoundationEssentials
import Glibc

/// Where the FastCGI responder listens.
public enum ListenAddress: Equatable, Sendable {
    /// The socket the spawner left on fd 0 (mod_fcgid, spawn-fcgi, systemd with StandardInput=socket).
    case inherited
    /// A listening socket passed by systemd socket activation (LISTEN_FDS, first fd is 3).
    case activated(fd: Int32)
    case unix(path: String)
    case tcp(host: String, port: Int)

    /// Parses `unix:/run/mcp-fcgi.sock`, `/run/mcp-fcgi.sock` or `127.0.0.1:9000`. A TCP
    /// address must name the interface: every peer that reaches the socket chooses
    /// `REMOTE_ADDR`, so `:9000` or `0.0.0.0:9000` (every interface) are refused.
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
            if let problem = ListenAddress.problem(withHost: host) { throw ListenAddressError(text: text, reason: problem) }
            self = .tcp(host: host, port: port)
        } else {
            throw ListenAddressError(text: text, reason: "use unix:/path/to.sock or HOST:PORT")
        }
    }

    /// Why a TCP host cannot be listened on, or nil.
    static func problem(withHost host: String) -> String? {
        if host.isEmpty {
            return "name the address the web server connects to, e.g. 127.0.0.1:9000 (without a host libfcgi listens on every interface)"
        }
        if ["0.0.0.0", "*"].contains(host) {
            return "\(host) is every interface: name the address the web server connects to, e.g. 127.0.0.1:9000"
        }
        if host.contains(":") || host.hasPrefix("[") {
            return "libfcgi listens on IPv4 only: use an IPv4 address such as 127.0.0.1 or a unix socket"
        }
        return nil
    }

    /// The socket systemd passed, if this process is the one it was meant for
    /// (LISTEN_PID is our pid). With several sockets the first one is served.
    public static func systemdActivated(environment: [String: String], pid: Int32 = getpid()) throws -> ListenAddress? {
        guard let pidText = environment["LISTEN_PID"], let countText = environment["LISTEN_FDS"] else { return nil }
        guard Int32(pidText) == pid else { return nil }
        guard let count = Int(countText), count >= 1 else {
            throw ListenAddressError(text: "LISTEN_FDS=\(countText)", reason: "systemd passed no socket")
        }
        let fd: Int32 = 3  // SD_LISTEN_FDS_START
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        var listening: Int32 = 0
        var listeningLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue),
              getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &listeningLength) == 0, listening == 1 else {
            throw ListenAddressError(text: "fd 3", reason: "the socket systemd passed is not a listening stream socket (ListenStream= in the .socket unit)")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return .activated(fd: fd)
    }

    /// The form libfcgi's FCGX_OpenSocket expects.
    var libfcgiPath: String {
        switch self {
        case .inherited: return ""
        case .activated(let fd): return "fd \(fd)"
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
