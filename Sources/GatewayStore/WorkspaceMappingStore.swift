import EntraAuth

/// Grants one Power BI workspace to a user or group of a tenant (service-principal mode).
public struct WorkspaceMapping: Equatable, Sendable {
    public enum Kind: String, Sendable { case user, group }
    public let tenant: String
    public let kind: Kind
    public let principal: String
    public let workspace: String

    /// Ids are GUIDs, stored lower-cased so lookups need no case folding.
    public init(tenant: String, kind: Kind, principal: String, workspace: String) throws {
        for (name, value) in [("tenant", tenant), (kind.rawValue, principal), ("workspace", workspace)]
        where !IssuerTenantCheck.isGUID(value) && !(name == "user" && Principal.isQualifiedUserID(value)) {
            throw StoreError("\(name) '\(value)' is not a GUID")
        }
        self.tenant = tenant.lowercased()
        self.kind = kind
        self.principal = Principal.canonicalUserID(principal)
        self.workspace = workspace.lowercased()
    }
}

/// Which Power BI workspaces each user or group may use in service-principal mode.
public protocol WorkspaceMappingStore: AnyObject, Sendable {
    /// Adds mappings in one transaction: all of them or none.
    func addMappings(_ mappings: [WorkspaceMapping]) throws
    func removeMapping(_ mapping: WorkspaceMapping) throws -> Bool
    func mappings(tenant: String?) throws -> [WorkspaceMapping]
    /// The workspaces a user may use in service-principal mode: mapped to them or to one of their groups.
    func workspaces(tenant: String, user: String, groups: [String]) throws -> Set<String>
}
