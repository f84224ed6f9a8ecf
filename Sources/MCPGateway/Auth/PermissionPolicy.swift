import EntraAuth

/// Maps what a token carries (app roles, delegated scopes) to the permissions tools
/// ask for. Anything not mapped grants nothing: deny by default.
public struct PermissionPolicy: Sendable {
    public var rolePermissions: [String: Set<String>]
    public var scopePermissions: [String: Set<String>]

    public init(rolePermissions: [String: Set<String>], scopePermissions: [String: Set<String>]) {
        self.rolePermissions = rolePermissions
        self.scopePermissions = scopePermissions
    }

    /// Two roles out of the box, as Entra app roles: users and administrators.
    public static let standard = PermissionPolicy(
        rolePermissions: ["MCP.User": ["user"], "MCP.Admin": ["user", "admin"]],
        scopePermissions: [:])

    public func permissions(for p: Principal) -> Set<String> {
        var granted = Set<String>()
        for role in p.roles { granted.formUnion(rolePermissions[role] ?? []) }
        // App-only tokens carry no delegated scopes by definition; ignore any that claim to.
        if !p.isAppOnly { for scope in p.scopes { granted.formUnion(scopePermissions[scope] ?? []) } }
        return granted
    }

    public func scopes(granting permission: String) -> [String] {
        scopePermissions.filter { $0.value.contains(permission) }.map(\.key).sorted()
    }

    public func roles(granting permission: String) -> [String] {
        rolePermissions.filter { $0.value.contains(permission) }.map(\.key).sorted()
    }
}
