import GatewaySupport

/// The page a person sees before an MCP client may act for them: plain server-rendered HTML
/// with no external assets, no script, and headers that keep it out of frames.
enum ConsentPage {
    static let securityHeaders = headers(formTargets: [])

    /// `formTargets`: origins besides ours the consent form's navigation is redirected through.
    /// Browsers apply `form-action` to every redirect after the POST (Chromium blocks the
    /// navigation otherwise), so Allow needs Entra's origin and Deny the client's.
    static func headers(formTargets: [String]) -> [(String, String)] {
        let formAction = (["'self'"] + formTargets).joined(separator: " ")
        return [
            ("Content-Type", "text/html; charset=utf-8"),
            ("X-Frame-Options", "DENY"),
            ("Content-Security-Policy",
             "default-src 'none'; style-src 'unsafe-inline'; form-action \(formAction); frame-ancestors 'none'; base-uri 'none'"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    }

    /// `scheme://host[:port]` of an absolute URL, as CSP source expressions name an origin.
    static func origin(of url: String) -> String? {
        guard let origin = StrictURL(url)?.origin else { return nil }
        // Only characters an origin has: nothing can end the directive or add a source.
        guard origin.allSatisfy({ $0.isLetter || $0.isNumber || ".-:/[]".contains($0) }) else { return nil }
        return origin
    }

    struct Content {
        var serverName: String
        var clientName: String
        var clientId: String
        var redirectURI: String
        var redirectHost: String
        var scopes: [String]
        var formAction: String
        var requestId: String
        var csrf: String
        /// The client's id is a URL it proved it controls (metadata document), or it registered itself.
        var clientIsSelfDescribed: Bool
        /// Where Allow leads: the authority the person signs in at.
        var signInAuthority: String? = nil
    }

    static func render(_ c: Content) -> HTTPResponse {
        let scopes = c.scopes.map { "<li><code>\(escape($0))</code></li>" }.joined()
        let origin = c.clientIsSelfDescribed
            ? "<p class=\"warn\">This application registered itself; its name is not verified. Check the address it will send you back to.</p>"
            : ""
        let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Allow \(escape(c.clientName)) to use \(escape(c.serverName))?</title>
        <style>
        body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b;line-height:1.45}
        h1{font-size:1.35rem}.host{font-size:1.1rem;font-weight:600;background:#f3f3f3;padding:.4rem .6rem;border-radius:4px;word-break:break-all}
        .warn{color:#8a4b00}.buttons{display:flex;gap:1rem;margin-top:1.5rem}
        button{font-size:1rem;padding:.6rem 1.4rem;border-radius:4px;border:1px solid #666;background:#fff;cursor:pointer}
        button.allow{background:#0b5cad;color:#fff;border-color:#0b5cad}small{color:#555;word-break:break-all}
        </style></head><body>
        <h1>Allow <span id="client-name">\(escape(c.clientName))</span> to use \(escape(c.serverName)) as you?</h1>
        <p>After you allow it and sign in with your Microsoft account, you will be sent to:</p>
        <p class="host" id="redirect-host">\(escape(c.redirectHost))</p>
        <p><small id="redirect-uri">\(escape(c.redirectURI))</small></p>
        \(origin)
        <p>It will be able to call this server's tools with your identity and permissions:</p>
        <ul id="scopes">\(scopes)</ul>
        <p><small>Client id: \(escape(c.clientId))</small></p>
        <form method="post" action="\(escape(c.formAction))">
        <input type="hidden" name="request" value="\(escape(c.requestId))">
        <input type="hidden" name="csrf" value="\(escape(c.csrf))">
        <div class="buttons">
        <button type="submit" name="decision" value="allow" class="allow" id="allow">Allow</button>
        <button type="submit" name="decision" value="deny" id="deny">Deny</button>
        </div></form></body></html>
        """
        let targets = [c.signInAuthority, c.redirectURI].compactMap { $0.flatMap(origin(of:)) }
        return HTTPResponse(status: 200, headers: headers(formTargets: targets), body: Array(html.utf8))
    }

    /// An error a person reads (never a redirect: the request could not be trusted to go anywhere).
    static func error(_ status: Int, title: String, detail: String) -> HTTPResponse {
        let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
        <style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}</style></head>
        <body><h1 id="error-title">\(escape(title))</h1><p id="error-detail">\(escape(detail))</p></body></html>
        """
        return HTTPResponse(status: status, headers: securityHeaders, body: Array(html.utf8))
    }

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                if ch.value < 0x20 || ch.value == 0x7F { out += "&#xFFFD;" } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }
}
