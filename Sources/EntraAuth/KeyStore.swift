import GatewayCrypto
import GatewaySupport
import MCPJSON

/// Signing keys from an OpenID provider, shared by every process through JSON
/// files in the state directory:
///
/// - `<base>.json`: the last good key set, its jwks_uri and when it was fetched;
/// - `<base>.fetch.json`: when the last fetch was tried, whether it worked, and
///   when the last unknown-kid refetch happened (so the rate limit holds across
///   worker processes and one-shot CGI processes);
/// - `<base>.lock`: an flock so one process at a time talks to the network.
///
/// Parsed keys are kept in memory and reloaded when the file changes. A failed
/// refresh never discards the last good keys.
public final class JWKSKeyStore: SigningKeyProvider, @unchecked Sendable {
    public struct Settings {
        public var authority: String
        /// Tenant segment of the discovery URL: a tenant GUID, `organizations` or `common`.
        public var metadataTenant: String
        /// Skip discovery and use this key set URL.
        public var jwksURI: String?
        public var stateDirectory: String
        /// Scheduled refresh age (Microsoft: check about daily; IdentityModel: 12 h).
        public var refreshIntervalSeconds: Int64 = 12 * 3600
        /// Minimum gap between unknown-kid refetches (IdentityModel's RefreshInterval: 5 min).
        public var unknownKidRefetchIntervalSeconds: Int64 = 300
        /// After a failed fetch, wait this long before trying again.
        public var failureRetryIntervalSeconds: Int64 = 30
        /// How long a token with an unknown kid waits for a key fetch already running (in this
        /// process or another) before it is refused: a burst of made-up kids must not hold the
        /// worker threads for as long as a fetch takes.
        public var unknownKidWaitMilliseconds = 200
        public var http: HTTPFetchOptions = HTTPFetchOptions()
        /// A generic OpenID provider: discovery at `{issuer}/.well-known/openid-configuration`,
        /// whose `issuer` must equal this exactly (OpenID Connect Discovery §4.3). Nil: Entra's
        /// `{authority}/{tenant}/v2.0` discovery.
        public var exactIssuer: String?

        public init(authority: String, metadataTenant: String, jwksURI: String? = nil, stateDirectory: String) {
            self.authority = authority
            self.metadataTenant = metadataTenant
            self.jwksURI = jwksURI
            self.stateDirectory = stateDirectory
        }
    }

    private struct Snapshot {
        let keys: KeySet
        let fetchedAt: Int64
        let jwksURI: String?
        let stamp: FileStamp?
    }

    private struct FetchRecord {
        var lastAttempt: Int64?
        var lastAttemptOK = true
        var lastForced: Int64?
    }

    public let settings: Settings
    private let fetcher: JWKSFetcher
    private let clock: () -> Int64
    private let cachePath: String
    private let fetchRecordPath: String
    private let lockPath: String
    private let state = Lock()     // guards `snapshot` and `memoryRecord`; never held during I/O
    private let fetching = Lock()  // one fetching thread per process
    private var snapshot: Snapshot?
    private var memoryRecord = FetchRecord()
    /// The cache file version last found untrustworthy: warned about once, not reread.
    private var distrustedStamp: FileStamp?

    /// `http` fetches the discovery and key-set documents (the process gives it libcurl, with `settings.http`).
    public init(settings: Settings, http: HTTPFetching, clock: @escaping () -> Int64 = systemClockSeconds) throws {
        guard settings.http.permits(settings.authority) else {
            throw AuthConfigurationError("authority must be an https URL (plain http only with allowInsecureHTTPForTesting)")
        }
        if let uri = settings.jwksURI, !settings.http.permits(uri) {
            throw AuthConfigurationError("jwks URI must be an https URL (plain http only with allowInsecureHTTPForTesting)")
        }
        try StateDirectory.ensure(settings.stateDirectory)
        self.settings = settings
        self.fetcher = JWKSFetcher(http: http, options: settings.http)
        self.clock = clock
        // One file set per key source, so differently configured apps can share a directory.
        var identity = OpenIDConfiguration.trimmedAuthority(settings.authority) + "|" + settings.metadataTenant + "|" + (settings.jwksURI ?? "")
        // Issuers that differ only by a trailing slash are different issuers: never one key file.
        if let exact = settings.exactIssuer { identity += "|" + exact }
        let base = settings.stateDirectory + "/jwks-" + String(SHA256Digest(Array(identity.utf8)).hex.prefix(16))
        cachePath = base + ".json"
        fetchRecordPath = base + ".fetch.json"
        lockPath = base + ".lock"
    }

    public func signingKey(kid: String, algorithm: JWSAlgorithm) -> Result<VerificationKey, TokenVerificationError> {
        var current = currentSnapshot()
        if current == nil || isStale(current!) {
            // No keys: wait for a fetch. Stale keys: refresh if nobody else is, else use them.
            current = refresh(forced: false, wait: current == nil ? .indefinitely : .never) ?? current
        }
        guard let keys = current?.keys else { return .failure(.signingKeysUnavailable) }
        if let found = keys.key(for: kid, algorithm: algorithm) { return found }
        // Unknown kid: the provider may have rotated keys. One rate-limited refetch; while this
        // process's refetch is recent (or running) the answer is at once, and a fetch running
        // elsewhere is waited for only briefly.
        if let t = state.withLock({ memoryRecord.lastForced }), clock() - t < settings.unknownKidRefetchIntervalSeconds {
            return .failure(.unknownSigningKey)
        }
        guard let refreshed = refresh(forced: true, wait: .forAtMost(milliseconds: settings.unknownKidWaitMilliseconds)) else {
            return .failure(.unknownSigningKey)
        }
        return refreshed.keys.key(for: kid, algorithm: algorithm) ?? .failure(.unknownSigningKey)
    }

    /// Fetches now if the rate limits allow; for operators and tests.
    @discardableResult
    public func refreshNow() -> Bool { refresh(forced: false, wait: .indefinitely, ignoreBackoff: true) != nil }

    public var keysFetchedAt: Int64? { currentSnapshot()?.fetchedAt }

    public func ensureKeys() -> Bool {
        currentSnapshot() != nil || refresh(forced: false, wait: .indefinitely) != nil
    }

    /// The kids currently loaded (for diagnostics).
    public var loadedKeyIDs: [String] { currentSnapshot().map { Array($0.keys.keys.keys).sorted() } ?? [] }

    // MARK: - snapshot from memory or the shared file

    private func isStale(_ s: Snapshot) -> Bool { clock() - s.fetchedAt >= settings.refreshIntervalSeconds }

    private func currentSnapshot() -> Snapshot? {
        let stamp = StateFiles.stamp(cachePath)
        let inMemory = state.withLock { snapshot }
        if let inMemory, inMemory.stamp == stamp { return inMemory }
        guard stamp != nil, stamp != state.withLock({ distrustedStamp }), let loaded = loadCacheFile() else { return inMemory }
        state.withLock { snapshot = loaded }
        return loaded
    }

    /// The shared cache decides which keys sign valid tokens, so it is read only when nobody but
    /// this user can have written it (see `StateFiles.readTrustedFile`); otherwise keys are fetched.
    private func loadCacheFile() -> Snapshot? {
        let bytes: [UInt8], stamp: FileStamp
        switch StateFiles.readTrustedFile(cachePath, maxBytes: 4 << 20) {
        case .missing: return nil
        case .untrusted(let reason, let found):
            state.withLock { distrustedStamp = found }
            Log.shared.warning("signing key cache ignored; fetching keys instead", ["reason": .string(reason)])
            return nil
        case .read(let b, let s): (bytes, stamp) = (b, s)
        }
        guard let doc = try? JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 10, maxBytes: 4 << 20)),
              let fetchedAt = doc["fetched_at"]?.intValue, let jwks = doc["jwks"],
              let keys = try? KeySet(jwks: jwks), !keys.isEmpty
        else { return nil }
        return Snapshot(keys: keys, fetchedAt: Int64(fetchedAt), jwksURI: doc["jwks_uri"]?.stringValue, stamp: stamp)
    }

    // MARK: - refresh

    /// Fetches a new key set if the limits allow. Returns the snapshot in force
    /// afterwards when something new was obtained (by us or another process), else nil.
    private func refresh(forced: Bool, wait: LockWait, ignoreBackoff: Bool = false) -> Snapshot? {
        let before = state.withLock { snapshot?.fetchedAt }
        let work = { () -> Snapshot? in
            StateFiles.withFileLock(self.lockPath, wait: wait) { () -> Snapshot? in
                // Another thread or process may have refreshed while we waited.
                if let latest = self.currentSnapshot(), latest.fetchedAt != before, !self.isStale(latest) { return latest }
                let now = self.clock()
                var record = self.readFetchRecord()
                if !ignoreBackoff {
                    if forced {
                        if let t = record.lastForced, now - t < self.settings.unknownKidRefetchIntervalSeconds { return nil }
                    } else if !record.lastAttemptOK, let t = record.lastAttempt,
                              now - t < self.settings.failureRetryIntervalSeconds {
                        return nil
                    }
                }
                record.lastAttempt = now
                if forced { record.lastForced = now }
                self.writeFetchRecord(record)
                let result = self.fetch(now: now)
                record.lastAttemptOK = result != nil
                self.writeFetchRecord(record)
                return result
            } ?? nil
        }
        return fetching.withLock(wait, work) ?? nil
    }

    private func fetch(now: Int64) -> Snapshot? {
        let previous = state.withLock { snapshot }
        var jwksURI = settings.jwksURI
        if jwksURI == nil {
            // Rediscover on each refresh; if discovery is down, the last known URI still serves.
            let discovered = settings.exactIssuer.map { try? fetcher.discover(issuer: $0) }
                ?? (try? fetcher.discover(authority: settings.authority, tenant: settings.metadataTenant))
            jwksURI = discovered?.jwksURI ?? previous?.jwksURI
        }
        guard let uri = jwksURI, settings.http.permits(uri),
              let (document, keys) = try? fetcher.fetchKeySet(jwksURI: uri)
        else { return nil }
        var file = JSONObject()
        file["authority"] = .string(settings.authority)
        file["tenant"] = .string(settings.metadataTenant)
        file["jwks_uri"] = .string(uri)
        file["fetched_at"] = .integer(Int(now))
        file["jwks"] = document
        // If the directory is not writable the keys still serve this process.
        try? PrivateFiles.writeAtomically(cachePath, JSONWriter.serialize(.object(file)))
        let fresh = Snapshot(keys: keys, fetchedAt: now, jwksURI: uri, stamp: StateFiles.stamp(cachePath))
        state.withLock { snapshot = fresh }
        return fresh
    }

    private func readFetchRecord() -> FetchRecord {
        var record = state.withLock { memoryRecord }
        if let (bytes, _) = StateFiles.readFile(fetchRecordPath, maxBytes: 4096),
           let doc = try? JSONParser.parse(bytes) {
            // The later of the shared file and this process's memory wins.
            if let t = doc["last_attempt"]?.intValue, Int64(t) >= record.lastAttempt ?? .min {
                record.lastAttempt = Int64(t)
                record.lastAttemptOK = doc["last_attempt_ok"]?.boolValue ?? true
            }
            if let t = doc["last_forced_refetch"]?.intValue { record.lastForced = max(record.lastForced ?? .min, Int64(t)) }
        }
        return record
    }

    private func writeFetchRecord(_ record: FetchRecord) {
        state.withLock { memoryRecord = record }
        var o = JSONObject()
        if let t = record.lastAttempt { o["last_attempt"] = .integer(Int(t)) }
        o["last_attempt_ok"] = .bool(record.lastAttemptOK)
        if let t = record.lastForced { o["last_forced_refetch"] = .integer(Int(t)) }
        try? PrivateFiles.writeAtomically(fetchRecordPath, JSONWriter.serialize(.object(o)))
    }
}
