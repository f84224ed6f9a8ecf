import MCPJSON

/// The client metadata we keep (RFC 7591 §2), from a registration request or a Client ID
/// Metadata Document, each field type-checked and bounded. Fields we do not use are ignored, as
/// RFC 7591 §2 asks; a JSON null counts as absent.
package struct ClientMetadata: Equatable, Sendable {
    /// Optional in a registration (the consent page then shows the client id); required in a document.
    var clientName: String?
    package var redirectURIs: [String]
    var grantTypes: [String]
    var responseTypes: [String]
    var authMethod: OAuthClient.AuthMethod

    static let supportedGrantTypes = ["authorization_code", "refresh_token"]
    static let maxNameLength = 200
    package static let maxRedirectURIs = 20

    enum Origin {
        /// RFC 7591: the auth method defaults to client_secret_basic.
        case registration
        /// A client id URL: no shared secret can exist, so the auth method is `none`; a name is required.
        case metadataDocument
    }

    /// An RFC 7591 §3.2.2 error.
    struct Problem: Error, Equatable, CustomStringConvertible {
        /// `invalid_redirect_uri` or `invalid_client_metadata`.
        let error: String
        let description: String

        static func redirect(_ description: String) -> Problem { Problem(error: "invalid_redirect_uri", description: description) }
        static func metadata(_ description: String) -> Problem { Problem(error: "invalid_client_metadata", description: description) }
    }

    /// The fields as stored and as the registration answers them.
    package var json: JSONObject {
        var o = JSONObject()
        if let clientName { o["client_name"] = .string(clientName) }
        o["redirect_uris"] = JSONValue(redirectURIs)
        o["grant_types"] = JSONValue(grantTypes)
        o["response_types"] = JSONValue(responseTypes)
        o["token_endpoint_auth_method"] = .string(authMethod.rawValue)
        return o
    }
}

// In an extension, so the memberwise initialiser stays.
extension ClientMetadata {
    /// Validates what a client sent about itself.
    init(validating o: JSONObject, origin: Origin, redirectHosts: [String]?) throws(Problem) {
        redirectURIs = try Self.redirectURIs(o, redirectHosts: redirectHosts)
        clientName = try Self.clientName(o, required: origin == .metadataDocument)
        grantTypes = try Self.grantTypes(o)
        responseTypes = try Self.responseTypes(o)
        authMethod = try Self.authMethod(o, origin: origin)
    }

    /// Reads back what `json` wrote (validated when it was stored); nil when it is not that shape.
    package init?(stored o: JSONObject) {
        func strings(_ key: String) -> [String]? {
            guard let a = o[key]?.arrayValue else { return nil }
            let s = a.compactMap(\.stringValue)
            return s.count == a.count ? s : nil
        }
        guard let uris = strings("redirect_uris"), let grants = strings("grant_types"), let responses = strings("response_types"),
              let method = o["token_endpoint_auth_method"]?.stringValue.flatMap(OAuthClient.AuthMethod.init(rawValue:)) else { return nil }
        if let name = o["client_name"], name.stringValue == nil { return nil }
        self.init(clientName: o["client_name"]?.stringValue, redirectURIs: uris, grantTypes: grants, responseTypes: responses,
                  authMethod: method)
    }

    // MARK: - The fields

    private static func present(_ o: JSONObject, _ key: String) -> JSONValue? {
        guard let v = o[key], !v.isNull else { return nil }
        return v
    }

    /// A list of strings, or nil when absent; `problem` when it is something else.
    private static func stringList(_ o: JSONObject, _ key: String, _ problem: Problem) throws(Problem) -> [String]? {
        guard let v = present(o, key) else { return nil }
        guard let items = v.arrayValue else { throw problem }
        var out: [String] = []
        for item in items {
            guard let s = item.stringValue else { throw problem }
            if !out.contains(s) { out.append(s) }
        }
        return out
    }

    private static func redirectURIs(_ o: JSONObject, redirectHosts: [String]?) throws(Problem) -> [String] {
        let uris = try stringList(o, "redirect_uris", .redirect("redirect_uris must be a list of strings")) ?? []
        guard !uris.isEmpty else { throw .redirect("redirect_uris is required: at least one redirect URI") }
        guard uris.count <= maxRedirectURIs else { throw .redirect("at most \(maxRedirectURIs) redirect URIs may be registered") }
        for (i, uri) in uris.enumerated() {
            if let problem = RedirectURIRule.problem(with: uri, allowedHosts: redirectHosts) {
                throw .redirect("redirect_uris[\(i)] \(problem)")
            }
        }
        return uris
    }

    private static func clientName(_ o: JSONObject, required: Bool) throws(Problem) -> String? {
        guard let v = present(o, "client_name") else {
            if required { throw .metadata("client_name is required") }
            return nil
        }
        guard let name = v.stringValue else { throw .metadata("client_name must be a string") }
        guard name.count <= maxNameLength else { throw .metadata("client_name is longer than \(maxNameLength) characters") }
        guard isPrintable(name) else {
            throw .metadata("client_name must be printable text (no control or formatting characters, not only spaces)")
        }
        return name
    }

    /// Text a person reads on the consent page: no control characters, and no format characters
    /// (bidirectional overrides could make a name read as another).
    static func isPrintable(_ text: String) -> Bool {
        guard text.contains(where: { !$0.isWhitespace }) else { return false }
        return text.unicodeScalars.allSatisfy { s in
            switch s.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned: return false
            default: return true
            }
        }
    }

    private static func grantTypes(_ o: JSONObject) throws(Problem) -> [String] {
        guard let grants = try stringList(o, "grant_types", .metadata("grant_types must be a list of strings")) else {
            return ["authorization_code"]  // RFC 7591 §2
        }
        guard grants.allSatisfy(supportedGrantTypes.contains) else {
            throw .metadata("grant_types may hold only authorization_code and refresh_token")
        }
        guard grants.contains("authorization_code") else { throw .metadata("grant_types must include authorization_code") }
        return grants
    }

    private static func responseTypes(_ o: JSONObject) throws(Problem) -> [String] {
        let types = try stringList(o, "response_types", .metadata("response_types must be a list of strings")) ?? ["code"]
        guard types == ["code"] else { throw .metadata("response_types must be [\"code\"]") }
        return types
    }

    private static func authMethod(_ o: JSONObject, origin: Origin) throws(Problem) -> OAuthClient.AuthMethod {
        switch origin {
        case .registration:
            guard let v = present(o, "token_endpoint_auth_method") else { return .clientSecretBasic }  // RFC 7591 §2
            guard let name = v.stringValue, let method = OAuthClient.AuthMethod(rawValue: name) else {
                throw .metadata("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
            }
            return method
        case .metadataDocument:
            if present(o, "client_secret") != nil { throw .metadata("a metadata document must not contain a client_secret") }
            guard let v = present(o, "token_endpoint_auth_method") else { return .none }
            guard v.stringValue == OAuthClient.AuthMethod.none.rawValue else {
                throw .metadata("token_endpoint_auth_method must be none: a metadata document cannot use a shared secret")
            }
            return .none
        }
    }
}
