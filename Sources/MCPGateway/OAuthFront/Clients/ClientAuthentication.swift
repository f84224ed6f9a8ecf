import GatewayCrypto
import MCPJSON
import GatewaySupport

/// The outcome of client authentication at the token and revocation endpoints (RFC 6749 §2.3).
/// `usedBasic`: the client tried HTTP Basic, so a 401 must carry `WWW-Authenticate: Basic`.
/// Descriptions never hold a secret.
enum ClientAuthentication: Equatable {
    case authenticated
    case failed(description: String, usedBasic: Bool)

    /// Public clients send no secret at all; confidential ones send theirs the registered way
    /// (HTTP Basic or the form, not both: RFC 6749 §2.3), compared as SHA-256 digests in constant time.
    static func check(_ client: OAuthClient, form: [String: String], authorization: String?) -> ClientAuthentication {
        var basic: BasicCredentials?
        if let authorization {
            guard let credentials = BasicCredentials(header: authorization) else {
                return .failed(description: "the Authorization header is not HTTP Basic client authentication",
                               usedBasic: BasicCredentials.isBasicScheme(authorization))
            }
            basic = credentials
        }
        let usedBasic = basic != nil
        if let basic, basic.clientId != client.clientId {
            return .failed(description: "the client id in the Authorization header is not the client of this request", usedBasic: true)
        }
        if let id = form["client_id"], id != client.clientId {
            return .failed(description: "client_id is not the client of this request", usedBasic: usedBasic)
        }
        let postedSecret = form["client_secret"].flatMap { $0.isEmpty ? nil : $0 }
        if basic != nil && postedSecret != nil {
            return .failed(description: "use one client authentication method, not both HTTP Basic and client_secret", usedBasic: true)
        }
        switch client.authMethod {
        case .none:
            guard basic == nil && postedSecret == nil else {
                return .failed(description: "this client is public (token_endpoint_auth_method none): it must not send a client secret",
                               usedBasic: usedBasic)
            }
            return .authenticated
        case .clientSecretBasic:
            guard let basic else {
                return .failed(description: postedSecret == nil
                                   ? "client authentication is required: send the client secret with HTTP Basic"
                                   : "this client authenticates with HTTP Basic (client_secret_basic), not client_secret in the form",
                               usedBasic: false)
            }
            return verify(basic.secret, of: client, usedBasic: true)
        case .clientSecretPost:
            guard basic == nil else {
                return .failed(description: "this client authenticates with client_secret in the form (client_secret_post), not HTTP Basic",
                               usedBasic: true)
            }
            guard let postedSecret else {
                return .failed(description: "client authentication is required: client_secret is missing", usedBasic: false)
            }
            return verify(postedSecret, of: client, usedBasic: false)
        }
    }

    private static func verify(_ secret: String, of client: OAuthClient, usedBasic: Bool) -> ClientAuthentication {
        guard let expected = client.secretSHA256 else {
            return .failed(description: "this client has no secret on record", usedBasic: usedBasic)
        }
        let presented = SHA256Digest(Array(secret.utf8)).hex
        guard ConstantTime.equal(Array(presented.utf8), Array(expected.lowercased().utf8)) else {
            return .failed(description: "the client secret is wrong", usedBasic: usedBasic)
        }
        return .authenticated
    }
}

/// `Authorization: Basic base64(client_id ":" client_secret)`, each part form-urlencoded first
/// (RFC 6749 §2.3.1).
struct BasicCredentials: Equatable {
    let clientId: String
    let secret: String

    init?(header: String) {
        guard Self.isBasicScheme(header) else { return nil }
        let encoded = header.dropFirst(6).trimmingASCIISpaces()
        guard let bytes = Base64.decodeStandard(Array(encoded.utf8)), let text = String(validating: bytes, as: UTF8.self),
              let colon = text.firstIndex(of: ":"),
              let id = try? FormBody.decode(text[..<colon]), let secret = try? FormBody.decode(text[text.index(after: colon)...]),
              !id.isEmpty else { return nil }
        clientId = id
        self.secret = secret
    }

    static func isBasicScheme(_ header: String) -> Bool {
        header.count > 6 && header.prefix(6).lowercased() == "basic "
    }
}
