import FoundationEssentials
import GatewayStore
import GatewaySupport
import MCPJSON
import UpstreamHTTP

/// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose id
/// is an https URL describes itself in the JSON document at that URL. Fetched with no redirects
/// followed, a time and size cap, and never from an address that is not on the public internet
/// (the name is resolved and checked first, and the connection pinned to what was checked, so a
/// second DNS answer cannot lead elsewhere). A valid document is cached in the store for its
/// Cache-Control max-age within [60 s, 24 h]; failures are never cached.
package struct ClientMetadataDocumentFetcher: Sendable {
    let http: HTTPClient
    let store: OAuthStore
    let resolver: HostResolver
    let maxBytes: Int
    let redirectHosts: [String]?
    /// Test rigs only: loopback and private addresses, and plain http.
    let allowPrivateHosts: Bool
    let now: @Sendable () -> Double

    static let timeoutSeconds = 5.0
    package static let cacheSeconds = (minimum: 60.0, standard: 3600.0, maximum: 86_400.0)

    init(config: OAuthConfig, http: HTTPClient, store: OAuthStore, resolver: HostResolver, now: @escaping @Sendable () -> Double) {
        self.http = http
        self.store = store
        self.resolver = resolver
        maxBytes = config.metadataDocumentMaxBytes
        redirectHosts = config.redirectHosts
        allowPrivateHosts = config.allowPrivateMetadataHostsForTesting
        self.now = now
    }

    /// The transport for production: the gateway's libcurl client with certificate checks, no
    /// retries, the document size cap and the time limit (it never follows redirects); `oauth.ca_bundle`
    /// replaces the system's CAs when set.
    static func transport(for config: OAuthConfig) -> CurlHTTPClient {
        var options = CurlHTTPClientOptions.gateway
        options.connectTimeoutSeconds = timeoutSeconds
        options.totalTimeoutSeconds = timeoutSeconds
        options.maxResponseBytes = config.metadataDocumentMaxBytes
        options.maxRetries = 0
        options.allowInsecureHTTPForTesting = config.allowPrivateMetadataHostsForTesting
        options.caBundlePath = config.caBundle
        return CurlHTTPClient(options: options)
    }

    /// Whether `clientId` names a metadata document: an https URL with a path, without fragment,
    /// user info or dot segments (plain http too when the testing flag allows private hosts), and
    /// without a trailing dot on the host, which the connection pin could not cover.
    func isDocumentURL(_ clientId: String) -> Bool {
        guard clientId.utf8.count <= RedirectURIRule.maxLength, let url = StrictURL(clientId) else { return false }
        let schemes = allowPrivateHosts ? ["https", "http"] : ["https"]
        return schemes.contains(url.scheme) && url.path.count > 1 && url.fragment == nil && !url.hasUserInfo && !url.hasDotSegments
            && !url.host.hasSuffix(".")
    }

    /// Fetches, checks and caches the document of a client id URL (`isDocumentURL`).
    func fetch(_ clientId: String) throws(ClientLookupError) -> OAuthClient {
        func refuse(_ reason: String) -> ClientLookupError { .metadataDocumentRefused(clientId: clientId, reason: reason) }
        guard isDocumentURL(clientId), let url = StrictURL(clientId) else {
            throw refuse("the client id is not an https URL with a path")
        }
        let addresses: [String]
        do { addresses = try resolver.addresses(of: url.bareHost) } catch { throw refuse("\(error)") }
        guard !addresses.isEmpty else { throw refuse("\(url.host) has no address") }
        if !allowPrivateHosts, let special = addresses.first(where: { !PublicAddressRule.isPublic($0) }) {
            throw refuse("\(url.host) resolves to \(special), which is not a public internet address")
        }
        let response: UpstreamResponse
        do {
            response = try http.send(UpstreamRequest(method: "GET", url: clientId, headers: [("Accept", "application/json")],
                                                     timeoutSeconds: Self.timeoutSeconds, pinnedAddresses: addresses))
        } catch let e as UpstreamError {
            if case .responseTooLarge = e { throw refuse("the document is larger than \(maxBytes) bytes") }
            throw refuse(e.description)
        } catch {
            throw refuse("\(error)")
        }
        switch response.status {
        case 200: break
        case 300...399: throw refuse("it answered \(response.status), a redirect: metadata documents are fetched without following redirects")
        default: throw refuse("it answered HTTP \(response.status), not 200")
        }
        let metadata = try Self.read(document: response.body, clientId: clientId, maxBytes: maxBytes, redirectHosts: redirectHosts)
        let fetchedAt = now()
        let record = OAuthClientRecord(clientId: clientId, secretSHA256: nil, metadataJSON: JSONWriter.string(.object(metadata.json)),
                                       source: .metadataDocument, createdAt: fetchedAt,
                                       expiresAt: fetchedAt + Self.cacheLifetime(response.header("cache-control")))
        do { try store.saveOAuthClient(record) } catch {
            // The document is valid; only the next lookup pays for the fetch again.
            Log.shared.warning("shared store unavailable; a client metadata document was not cached", ["client_id": .string(clientId)])
        }
        return OAuthClient(clientId: clientId, metadata: metadata, source: .metadataDocument, secretSHA256: nil)
    }

    /// The metadata a fetched document body holds for `clientId`, validated, or why it is refused.
    package static func read(document body: [UInt8], clientId: String, maxBytes: Int,
                             redirectHosts: [String]?) throws(ClientLookupError) -> ClientMetadata {
        func refuse(_ reason: String) -> ClientLookupError { .metadataDocumentRefused(clientId: clientId, reason: reason) }
        guard body.count <= maxBytes else { throw refuse("the document is larger than \(maxBytes) bytes") }
        guard let json = try? JSONParser.parse(body, limits: JSONLimits(maxDepth: 8, maxBytes: maxBytes)),
              let object = json.objectValue else { throw refuse("the document is not a JSON object") }
        guard object["client_id"]?.stringValue == clientId else {
            throw refuse("its client_id is not the URL it was fetched from")
        }
        do throws(ClientMetadata.Problem) {
            return try ClientMetadata(validating: object, origin: .metadataDocument, redirectHosts: redirectHosts)
        } catch {
            throw refuse(error.description)
        }
    }

    /// Seconds to keep a document: its `max-age` (no-store and no-cache as 0) within the bounds.
    package static func cacheLifetime(_ cacheControl: String?) -> Double {
        var seconds = cacheSeconds.standard
        for directive in (cacheControl ?? "").split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map { $0.trimmingASCIISpaces().lowercased() }
            switch parts[0] {
            case "max-age" where parts.count == 2:
                if let value = Double(parts[1].trimming("\"")), value >= 0 { seconds = value }
            case "no-store", "no-cache":
                return cacheSeconds.minimum
            default:
                continue
            }
        }
        return min(max(seconds, cacheSeconds.minimum), cacheSeconds.maximum)
    }
}
