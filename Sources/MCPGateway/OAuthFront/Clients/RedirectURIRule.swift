/// Which redirect URIs a client may register, and which presented URI matches a registered one.
///
/// Registration: https with a host, or plain http on a loopback address (a native client's
/// local listener: 127.0.0.1, [::1], and localhost, which RFC 8252 §8.3 discourages but clients
/// use), any path and query; never a fragment or user info; within `oauth.redirect_hosts` when
/// that is set (loopback is always allowed).
/// Matching: the exact string, except the port of a loopback redirect (RFC 8252 §7.3), where the
/// client picks a free port each time. Nothing else is normalised: another path, query, scheme
/// or host never matches.
enum RedirectURIRule {
    static let maxLength = 2000

    /// Why `uri` cannot be registered, or nil when it can. Phrased to follow the URI's name.
    static func problem(with uri: String, allowedHosts: [String]?) -> String? {
        guard uri.utf8.count <= maxLength else { return "is longer than \(maxLength) characters" }
        guard let url = StrictURL(uri) else { return "is not an absolute URL (visible ASCII, scheme://host/path)" }
        if url.fragment != nil { return "must not contain a fragment (#)" }
        if url.hasUserInfo { return "must not contain a user name or password" }
        switch url.scheme {
        case "https":
            if let allowed = allowedHosts, !url.isLoopback, !allowed.contains(url.host.lowercased()) {
                return allowed.isEmpty
                    ? "must be on a loopback address: this server allows no other redirect hosts"
                    : "must be on one of the allowed redirect hosts (\(allowed.joined(separator: ", "))) or a loopback address"
            }
            return nil
        case "http":
            return url.isLoopback ? nil : "must use https (plain http only on 127.0.0.1, [::1] or localhost)"
        default:
            return "must use https (plain http only on 127.0.0.1, [::1] or localhost)"
        }
    }

    static func matches(registered: String, presented: String) -> Bool {
        if registered == presented { return true }
        guard let r = withoutLoopbackPort(registered), let p = withoutLoopbackPort(presented) else { return false }
        return r == p
    }

    /// A loopback http URI with its port taken out (`http://127.0.0.1:5000/cb` -> `http://127.0.0.1/cb`),
    /// or nil for any other URI. Textual, so nothing else of the URI can change.
    static func withoutLoopbackPort(_ uri: String) -> String? {
        for prefix in ["http://127.0.0.1", "http://[::1]", "http://localhost"] where uri.hasPrefix(prefix) {
            var rest = uri.dropFirst(prefix.count)
            if rest.first == ":" {
                let digits = rest.dropFirst().prefix { $0.isASCII && $0.isNumber }
                guard (1...5).contains(digits.count), let port = Int(digits), (1...65535).contains(port) else { return nil }
                rest = rest.dropFirst(1 + digits.count)
            }
            guard rest.isEmpty || rest.first == "/" || rest.first == "?" else { return nil }
            return prefix + rest
        }
        return nil
    }
}
