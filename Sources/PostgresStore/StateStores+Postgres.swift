import GatewayStore

extension StateStores {
    /// Every concern on the PostgreSQL server `settings` names. With `auditJournal` (a local
    /// directory) the audit trail is written to per-process journals there first and moved to the
    /// server in batches (`JournaledAuditLog`): the answer waits for a local write only, and
    /// records wait there while the server is down.
    public static func postgres(settings: PostgresSettings, auditJournal: String? = nil) throws -> StateStores {
        let store = try PostgresStore(settings: settings)
        var stores = StateStores(store)
        if let auditJournal {
            stores.audit = JournaledAuditLog(directory: auditJournal, store: store, sampleLimiter: store)
        }
        return stores
    }
}
