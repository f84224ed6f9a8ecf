import EntraAuth
import MCPJSON
import UpstreamHTTP

/// The `credential` section: the gateway's own confidential-client registration at Entra ID,
/// used by the token broker for On-Behalf-Of and client-credentials requests.
/// The file holds where the secret lives, never the secret itself.
public struct CredentialConfig: Sendable, ClientCredentialSources {
    public var clientId = ""
    public var clientSecretFile: String?
    public var clientSecretEnv: String?
    public var certificateFile: String?
    /// Defaults to `certificateFile` (one PEM holding both).
    public var privateKeyFile: String?
    public var assertionAlgorithm: ClientCertificate.Algorithm = .ps256
    /// Overrides the cloud's login host, e.g. a local fake in tests.
    public var authority: String?
    public var caBundle: String?
    public var allowInsecureHTTPForTesting = false
    public var timeoutSeconds = 10

    static func parse(_ s: ConfigSection) -> CredentialConfig? {
        guard s.isPresent else { return nil }
        var c = CredentialConfig()
        c.clientId = s.string("client_id", default: "")
        c.clientSecretFile = s.string("client_secret_file")
        c.clientSecretEnv = s.string("client_secret_env")
        c.certificateFile = s.string("certificate_file")
        c.privateKeyFile = s.string("private_key_file")
        let alg = s.string("assertion_algorithm", default: "PS256")
        if let a = ClientCertificate.Algorithm(rawValue: alg) { c.assertionAlgorithm = a } else { s.fail("assertion_algorithm", "must be PS256 or RS256") }
        c.authority = s.string("authority")
        c.caBundle = s.string("ca_bundle")
        c.allowInsecureHTTPForTesting = s.bool("allow_insecure_http_for_testing", default: false)
        c.timeoutSeconds = s.int("timeout_seconds", default: 10, range: 1...120)
        if !IssuerTenantCheck.isGUID(c.clientId) { s.fail("client_id", "is required: the gateway's application (client) id, a GUID") }
        let sources = [c.clientSecretFile, c.clientSecretEnv, c.certificateFile].compactMap { $0 }.count
        if sources != 1 {
            s.fail("client_secret_file", "set exactly one of client_secret_file, client_secret_env or certificate_file")
        }
        if c.privateKeyFile != nil && c.certificateFile == nil { s.fail("private_key_file", "needs certificate_file") }
        for (key, path) in [("client_secret_file", c.clientSecretFile), ("certificate_file", c.certificateFile),
                            ("private_key_file", c.privateKeyFile), ("ca_bundle", c.caBundle)] {
            if let p = path, !p.hasPrefix("/") { s.fail(key, "must be an absolute path") }
        }
        if let a = c.authority, !a.hasPrefix("https://") && !(c.allowInsecureHTTPForTesting && a.hasPrefix("http://")) {
            s.fail("authority", "must be an https URL (plain http only with allow_insecure_http_for_testing)")
        }
        return c
    }
}
