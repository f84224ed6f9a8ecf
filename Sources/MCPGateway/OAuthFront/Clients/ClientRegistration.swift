import FoundationEssentials
import GatewayStore
import GatewaySupport
import MCPJSON

/// RFC 7591 dynamic client registration: the request's metadata validated, the client stored,
/// and the answer. Our client ids are `mcpc_` + 128 random bits; a confidential client also gets
/// a secret, `mcps_` + 256 random bits, of which only the SHA-256 is kept.
struct ClientRegistration: Sendable {
    let config: OAuthConfig
    let store: OAuthStore
    let now: @Sendable () -> Double

    /// Registrations are a few hundred bytes; anything much larger is not one.
    static let maxBodyBytes = 16 << 10

    init(config: OAuthConfig, store: OAuthStore, now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        self.config = config
        self.store = store
        self.now = now
    }

    /// The RFC 7591 answer: 201 and the client's metadata, or 400 and {error, error_description}
    /// (503 when the store is unavailable).
    func register(body: [UInt8]) -> (status: Int, body: JSONValue) {
        let metadata: ClientMetadata
        do throws(ClientMetadata.Problem) {
            metadata = try ClientMetadata(validating: try Self.object(body), origin: .registration, redirectHosts: config.redirectHosts)
        } catch {
            return (400, ["error": .string(error.error), "error_description": .string(error.description)])
        }
        let issuedAt = now()
        let clientId = "mcpc_" + Hex.random(words: 2)
        let secret = metadata.authMethod.usesSecret ? "mcps_" + Hex.random(words: 4) : nil
        let record = OAuthClientRecord(clientId: clientId, secretSHA256: secret.map(FrontRandom.sha256),
                                       metadataJSON: JSONWriter.string(.object(metadata.json)), source: .registered,
                                       createdAt: issuedAt, expiresAt: nil)
        do { try store.saveOAuthClient(record) } catch {
            Log.shared.error("shared store unavailable; a client registration was not saved")
            return (503, ["error": "temporarily_unavailable", "error_description": "the server's shared store is unavailable; try again shortly"])
        }
        var answer = JSONObject()
        answer["client_id"] = .string(clientId)
        answer["client_id_issued_at"] = .integer(Int(issuedAt))
        if let secret {
            answer["client_secret"] = .string(secret)
            answer["client_secret_expires_at"] = 0  // never (RFC 7591 §3.2.1)
        }
        for (key, value) in metadata.json { answer[key] = value }
        return (201, .object(answer))
    }

    /// The body as a JSON object, or the problem.
    private static func object(_ body: [UInt8]) throws(ClientMetadata.Problem) -> JSONObject {
        let value: JSONValue
        do { value = try JSONParser.parse(body, limits: JSONLimits(maxDepth: 8, maxBytes: maxBodyBytes)) } catch {
            if let e = error as? JSONParseError, e.kind == .tooLarge {
                throw .metadata("the registration is larger than \(maxBodyBytes) bytes")
            }
            throw .metadata("the registration is not valid JSON")
        }
        guard let object = value.objectValue else { throw .metadata("the registration must be a JSON object") }
        return object
    }
}
