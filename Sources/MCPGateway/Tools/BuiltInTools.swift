/// A tool whose name is fixed in code, so the config check can know it before anything is built.
protocol NamedTool: Tool {
    static var name: String { get }
}

/// The tools this server brings itself, by name: what the composition root registers, and
/// so what a tool declared under `backends` may not be called.
enum BuiltInTools {
    /// Registered in every instance.
    static let gateway: [NamedTool.Type] = [WhoAmITool.self, ServerInfoTool.self, AuditLogTool.self, SystemStatusTool.self]

    /// Registered when a backend uses sessions.
    static let backendSessionNames = BackendSessionTool.Kind.allCases.map(\.name)

    /// Registered when the config has a `powerbi` section.
    static let powerBINames = PowerBITools.toolTypes.map { $0.name }

    /// Names no backend tool may take, whatever else is configured.
    static let reservedNames = Set(gateway.map { $0.name } + backendSessionNames)
}
