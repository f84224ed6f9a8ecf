import FoundationEssentials
import GatewaySupport

/// Remembers, per browser, which clients (with which redirect URI) the person already allowed,
/// so a returning client goes straight on to Entra. Signed by the front's key; each entry
/// expires on its own. `__Host-` pins it to this host and path `/`; it is HttpOnly, Secure and
/// SameSite=Lax (MCP security best practices for proxies).
struct ConsentCookie: Sendable {
    static let name = "__Host-mcp_consent"
    static let maxEntries = 20
    /// Entry: 16 hex digits of SHA-256(client id, redirect URI) and its expiry (Unix seconds).
    private(set) var entries: [(key: String, expires: Int)]

    init(entries: [(key: String, expires: Int)] = []) { self.entries = entries }

    static func entryKey(clientId: String, redirectURI: String) -> String {
        String(FrontRandom.sha256("\(clientId)\u{0}\(redirectURI)").prefix(16))
    }

    /// The cookie from a `Cookie` header, if present and its signature holds; live entries only.
    static func read(cookieHeader: String?, secrets: FrontSecrets, now: Double) -> ConsentCookie {
        guard let value = cookie(name, in: cookieHeader), let tilde = value.lastIndex(of: "~") else { return ConsentCookie() }
        let body = String(value[..<tilde]), tag = String(value[value.index(after: tilde)...])
        guard secrets.verify("consent-cookie", body, tag: tag) else { return ConsentCookie() }
        var entries: [(String, Int)] = []
        for item in body.split(separator: ",").prefix(maxEntries) {
            let fields = item.split(separator: ".")
            guard fields.count == 2, fields[0].count == 16, let expires = Int(fields[1]), Double(expires) > now else { continue }
            entries.append((String(fields[0]), expires))
        }
        return ConsentCookie(entries: entries)
    }

    /// A cookie's value from a `Cookie` header (the front's cookies: consent, and the consent page's browser binding).
    static func cookie(_ name: String, in header: String?) -> String? {
        for part in (header ?? "").split(separator: ";") {
            let pair = part.trimmingASCIISpaces()
            if pair.hasPrefix(name + "=") { return String(pair.dropFirst(name.count + 1)) }
        }
        return nil
    }

    func covers(clientId: String, redirectURI: String) -> Bool {
        let key = Self.entryKey(clientId: clientId, redirectURI: redirectURI)
        return entries.contains { $0.key == key }
    }

    /// This cookie with the client added (newest last; the oldest dropped past the limit).
    func adding(clientId: String, redirectURI: String, until expires: Int) -> ConsentCookie {
        let key = Self.entryKey(clientId: clientId, redirectURI: redirectURI)
        var list = entries.filter { $0.key != key }
        list.append((key, expires))
        return ConsentCookie(entries: Array(list.suffix(Self.maxEntries)))
    }

    /// The `Set-Cookie` header value.
    func setCookie(secrets: FrontSecrets, maxAgeSeconds: Int) -> String {
        let body = entries.map { "\($0.key).\($0.expires)" }.joined(separator: ",")
        let value = body + "~" + secrets.sign("consent-cookie", body)
        return "\(Self.name)=\(value); Max-Age=\(maxAgeSeconds); Path=/; Secure; HttpOnly; SameSite=Lax"
    }
}
