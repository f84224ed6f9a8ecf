import GatewayStore
import EntraAuth
import FoundationEssentials
import GatewaySupport

/// One configured instance (a client deployment) at run time: its own verifier, policy,
/// limits, tools and store, and the stages its requests go through. Built by `InstanceBuilder`.
public final class GatewayInstance: Sendable {
    public let config: GatewayConfig
    public var name: String { config.instanceName }
    public let pipeline: Pipeline
    /// The paths this instance answers (its MCP endpoint, metadata, and `/me` when alone).
    public let paths: [String]
    public let mcpPath: String
    public let stores: StateStores
    public let metrics: GatewayMetrics
    public let authenticator: Authenticator
    /// Read-only once built: worker threads read it without a lock.
    let registry: ToolRegistry
    public let operations: OperationsStatus

    init(config: GatewayConfig, pipeline: Pipeline, paths: [String], stores: StateStores, metrics: GatewayMetrics,
         authenticator: Authenticator, registry: ToolRegistry, operations: OperationsStatus) {
        self.config = config
        self.pipeline = pipeline
        self.paths = paths
        self.mcpPath = config.server.mcpPath
        self.stores = stores
        self.metrics = metrics
        self.authenticator = authenticator
        self.registry = registry
        self.operations = operations
    }

    /// Sends one exchange down this instance's stages.
    public func serve(_ exchange: inout Exchange) -> HTTPResponse { pipeline(&exchange) }
}
