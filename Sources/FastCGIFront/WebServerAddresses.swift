import GatewaySupport
import FoundationEssentials
import Glibc

/// The peers libfcgi accepts on a TCP listener: `FCGI_WEB_SERVER_ADDRS`, a comma-separated
/// list of IPv4 addresses it compares with each connection's source and closes the others.
/// Whoever connects chooses `REMOTE_ADDR` (proxy trust, `/metrics`), so a TCP listener always
/// has a list: the operator's, else loopback (the web server on this host).
enum WebServerAddresses {
    static let variable = "FCGI_WEB_SERVER_ADDRS"

    /// The list to set for `address`, nil for sockets libfcgi does not filter (unix, inherited, activated).
    static func allowList(for address: ListenAddress, environment: [String: String]) throws -> String? {
        guard case .tcp(let host, _) = address else { return nil }
        if let given = environment[variable] {
            let entries = given.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard !given.isEmpty, entries.allSatisfy(isIPv4) else {
                throw ServerError("\(variable) must list the web server's IPv4 addresses separated by commas, e.g. 127.0.0.1,10.0.0.5 (it is \"\(given)\")")
            }
            return given
        }
        guard host == "localhost" || (isIPv4(host) && host.hasPrefix("127.")) else {
            throw ServerError("listening on \(host) needs \(variable): the web server's IPv4 addresses, comma-separated (without it only loopback peers could connect)")
        }
        // The source of a loopback connection is 127.0.0.1, or the listening address itself.
        return isIPv4(host) && host != "127.0.0.1" ? "127.0.0.1,\(host)" : "127.0.0.1"
    }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }
}
