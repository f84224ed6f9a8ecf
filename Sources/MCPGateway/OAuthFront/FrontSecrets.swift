import FoundationEssentials
import GatewayCrypto
import GatewaySupport
import MCPJSON

/// The front's own key material, in `<state_dir>/oauth-front.key` (32 random bytes, 0600,
/// created once by whichever process starts first): it seals Entra's tokens at rest and
/// signs the consent page's CSRF tokens and the consent cookie. Every process of the site
/// reads the same file, so a page rendered by one process is accepted by another.
struct FrontSecrets: Sendable {
    static let fileName = "oauth-front.key"
    let cipher: SessionCipher
    private let macKey: [UInt8]

    init(stateDirectory: String) throws {
        cipher = try SessionCipher.loadOrCreate(stateDirectory: stateDirectory, fileName: Self.fileName)
        // A key of its own for signing, derived so the sealing key is never used for two jobs.
        let key = try PrivateFiles.readSecret(stateDirectory + "/" + Self.fileName, what: "OAuth front key", maxBytes: 32) ?? []
        macKey = HMACSHA256.authenticate(Array("mcp-fcgi oauth front signing v1".utf8), key: key)
    }

    /// A keyed tag of `purpose` and `message`, hex: purposes keep a CSRF token from passing as a cookie.
    func sign(_ purpose: String, _ message: String) -> String {
        Hex.encode(HMACSHA256.authenticate(Array("\(purpose)\u{0}\(message)".utf8), key: macKey))
    }

    func verify(_ purpose: String, _ message: String, tag: String) -> Bool {
        ConstantTime.equal(Array(tag.utf8), Array(sign(purpose, message).utf8))
    }

    /// Entra's tokens at rest, bound to the row they belong to.
    func seal(_ token: String, boundTo row: String) throws -> [UInt8] {
        try cipher.seal(Array(token.utf8), associatedData: Array("mcp-fcgi oauth token v1\u{0}\(row)".utf8))
    }

    func unseal(_ sealed: [UInt8], boundTo row: String) throws -> String {
        String(decoding: try cipher.unseal(sealed, associatedData: Array("mcp-fcgi oauth token v1\u{0}\(row)".utf8)), as: UTF8.self)
    }
}

/// Random values of the front: ids, codes, states, verifiers, tokens. 256 bits each.
enum FrontRandom {
    static func token() -> String { Hex.random(words: 4) }

    /// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2): base64url of its SHA-256.
    static func challenge(of verifier: String) -> String {
        Base64.encodeURL(SHA256Digest(Array(verifier.utf8)).bytes)
    }

    static func sha256(_ text: String) -> String { SHA256Digest(Array(text.utf8)).hex }
}
