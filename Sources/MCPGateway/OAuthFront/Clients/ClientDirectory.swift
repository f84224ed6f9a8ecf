import FoundationEssentials
import GatewayStore
import GatewaySupport
import UpstreamHTTP

/// The one place the authorize and token endpoints find a client: the config's clients first,
/// then the store (registered clients and cached metadata documents), then, for a client id that
/// is a URL, its metadata document fetched now. And how a found client authenticates.
final class ClientDirectory: Sendable {
    let configured: [String: OAuthClient]
    let store: OAuthStore
    let documents: ClientMetadataDocumentFetcher
    let now: @Sendable () -> Double

    init(config: OAuthConfig, store: OAuthStore, http: HTTPClient, resolver: HostResolver = SystemHostResolver(),
         now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) {
        configured = Dictionary(config.clients.map { ($0.clientId, OAuthClient(configured: $0)) }, uniquingKeysWith: { first, _ in first })
        self.store = store
        documents = ClientMetadataDocumentFetcher(config: config, http: http, store: store, resolver: resolver, now: now)
        self.now = now
    }

    /// nil: unknown; throws ClientLookupError (with a human-readable `description`, no secrets) when a metadata document could not be used.
    func client(id: String) throws -> OAuthClient? {
        if let client = configured[id] { return client }
        let record: OAuthClientRecord?
        do { record = try store.oauthClient(id: id, now: now()) } catch {
            throw ClientLookupError.storeUnavailable("\(error)")
        }
        if let record {
            if let client = OAuthClient(record: record) { return client }
            // A stored document that no longer reads is fetched again; a registration is lost.
            Log.shared.warning("a stored OAuth client does not read as one", ["client_id": .string(id)])
            guard record.source == .metadataDocument else { return nil }
        }
        guard documents.isDocumentURL(id) else { return nil }
        return try documents.fetch(id)
    }

    /// Token/revocation endpoint client authentication from the form and the Authorization header.
    func authenticate(_ client: OAuthClient, form: [String: String], authorization: String?) -> ClientAuthentication {
        ClientAuthentication.check(client, form: form, authorization: authorization)
    }
}
