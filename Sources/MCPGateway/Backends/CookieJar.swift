import FoundationEssentials
import GatewayStore
import MCPJSON
import UpstreamHTTP
import GatewaySupport

/// The cookies one backend set for one user. The gateway talks to a single origin per
/// backend, so Domain and Path are not needed; Max-Age and Expires tell when the session ends.
package struct CookieJar: Equatable, Sendable {
    package struct Cookie: Equatable, Sendable {
        package var name: String
        package var value: String
        /// Unix seconds; nil for a cookie that lasts as long as the backend accepts it.
        package var expiresAt: Double?
    }

    package private(set) var cookies: [Cookie] = []

    var isEmpty: Bool { cookies.isEmpty }

    /// The earliest expiry of any cookie, which is when the session stops working.
    var expiresAt: Double? { cookies.compactMap(\.expiresAt).min() }

    func isExpired(now: Double) -> Bool { cookies.isEmpty || expiresAt.map { $0 <= now } ?? false }

    /// The `Cookie` request header, or nil when nothing is left.
    package func header(now: Double) -> String? {
        let live = cookies.filter { $0.expiresAt.map { $0 > now } ?? true }
        return live.isEmpty ? nil : live.map { "\($0.name)=\($0.value)" }.joined(separator: "; ")
    }

    /// Takes in the `Set-Cookie` headers of a response; returns whether anything changed.
    @discardableResult
    package mutating func absorb(_ setCookies: [String], now: Double) -> Bool {
        let before = cookies
        for line in setCookies {
            guard let parsed = Self.parse(line, now: now) else { continue }
            let live = parsed.expiresAt.map { $0 > now } ?? true
            if let i = cookies.firstIndex(where: { $0.name == parsed.name }) {
                if live { cookies[i] = parsed } else { cookies.remove(at: i) }
            } else if live {
                cookies.append(parsed)
            }
        }
        return cookies != before
    }

    /// One `Set-Cookie` value; nil for anything malformed (it is ignored, as browsers do).
    package static func parse(_ line: String, now: Double) -> Cookie? {
        let parts = line.split(separator: ";", omittingEmptySubsequences: false).map { $0.trimmingASCIISpaces() }
        guard let first = parts.first, let eq = first.firstIndex(of: "=") else { return nil }
        let name = String(first[..<eq]).trimmingASCIISpaces()
        var value = String(first[first.index(after: eq)...]).trimmingASCIISpaces()
        if value.count >= 2 && value.hasPrefix("\"") && value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
        guard isToken(name), value.utf8.count <= 4096, value.utf8.allSatisfy(isCookieOctet) else { return nil }
        var maxAge: Double?
        var expires: Double?
        for attribute in parts.dropFirst() {
            let pair = attribute.split(separator: "=", maxSplits: 1).map { String($0).trimmingASCIISpaces() }
            switch pair.first?.lowercased() {
            case "max-age"?:
                if pair.count == 2, let seconds = Int(pair[1]) { maxAge = seconds <= 0 ? now - 1 : now + Double(seconds) }
            case "expires"?:
                if pair.count == 2, let date = HTTPDate.parse(pair[1]) { expires = date }
            default: break
            }
        }
        // Max-Age wins over Expires (RFC 6265 §5.3).
        return Cookie(name: name, value: value, expiresAt: maxAge ?? expires)
    }

    private static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { b in b > 0x20 && b < 0x7F && !Array("()<>@,;:\\\"/[]?={}".utf8).contains(b) }
    }

    private static func isCookieOctet(_ b: UInt8) -> Bool {
        b == 0x21 || (b >= 0x23 && b <= 0x2B) || (b >= 0x2D && b <= 0x3A) || (b >= 0x3C && b <= 0x5B) || (b >= 0x5D && b <= 0x7E)
    }

    // What is sealed into the store.
    package var serialized: [UInt8] {
        JSONWriter.serialize(.array(cookies.map { c in
            var o = JSONObject(pairs: [("n", .string(c.name)), ("v", .string(c.value))])
            if let e = c.expiresAt { o["e"] = .double(e) }
            return .object(o)
        }))
    }

    package init() {}

    package init(serialized bytes: [UInt8]) throws {
        guard let items = try JSONParser.parse(bytes).arrayValue else { throw StoreError("sealed session is not a cookie list") }
        for item in items {
            guard let n = item["n"]?.stringValue, let v = item["v"]?.stringValue else { throw StoreError("sealed session is malformed") }
            cookies.append(Cookie(name: n, value: v, expiresAt: item["e"]?.numberValue))
        }
    }
}
