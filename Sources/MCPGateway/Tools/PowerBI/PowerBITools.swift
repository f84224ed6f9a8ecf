import FoundationEssentials
import GatewayStore
import MCPJSON
import UpstreamHTTP
import GatewaySupport

/// The Power BI tools, registered together when the config has a `powerbi` section.
public enum PowerBITools {
    /// Read tools need `user`; starting a refresh changes Power BI state and needs `admin`.
    static let readPermission = "user"
    static let refreshPermission = "admin"

    /// `broker` is the instance's token broker (built once by the gateway, shared with the backend tools).
    public static func register(into registry: ToolRegistry, config: GatewayConfig, store: WorkspaceMappingStore,
                                broker: EntraTokenBroker?, metrics: GatewayMetrics? = nil) throws {
        guard let pbi = config.powerBI, let credentialConfig = config.credential, let broker else { return }
        var options = CurlHTTPClientOptions.gateway
        options.connectTimeoutSeconds = Double(pbi.connectTimeoutSeconds)
        options.totalTimeoutSeconds = Double(pbi.timeoutSeconds)
        options.maxResponseBytes = pbi.maxResponseBytes
        options.maxRetries = pbi.maxRetries
        options.caBundlePath = pbi.caBundle
        options.allowInsecureHTTPForTesting = pbi.allowInsecureHTTPForTesting
        let upstream = MeteredHTTPClient.wrap(CurlHTTPClient(options: options), upstream: "powerbi", metrics: metrics)
        var entraOptions = options
        entraOptions.totalTimeoutSeconds = Double(credentialConfig.timeoutSeconds)
        entraOptions.caBundlePath = credentialConfig.caBundle ?? pbi.caBundle
        entraOptions.allowInsecureHTTPForTesting = credentialConfig.allowInsecureHTTPForTesting
        // The cloud's login host (or the configured override), reached with Power BI's connection limits.
        let tokens = broker.atAuthority(pbi.authority,
                                        http: MeteredHTTPClient.wrap(CurlHTTPClient(options: entraOptions), upstream: "entra_token", metrics: metrics))
        for tool in tools(PowerBIClient(config: pbi, http: upstream, broker: tokens, store: store)) { try registry.register(tool) }
    }

    /// Every Power BI tool, in the order they are listed; `BuiltInTools` reserves their names.
    static let toolTypes: [PowerBITool.Type] = [
        ListWorkspacesTool.self, ListDatasetsTool.self, GetDatasetSchemaTool.self, ListReportsTool.self,
        ListDashboardsTool.self, ExecuteDAXQueryTool.self, GetRefreshHistoryTool.self, TriggerRefreshTool.self,
    ]

    public static func tools(_ client: PowerBIClient) -> [Tool] {
        toolTypes.map { $0.init(client: client) }
    }

    // MARK: - Schema pieces

    static let guid: JSONValue = ["type": "string", "format": "uuid"]
    static func idProperty(_ what: String) -> JSONValue {
        ["type": "string", "format": "uuid", "description": .string("The \(what) id (a GUID).")]
    }
    static let readOnly = ToolAnnotations(readOnly: true, destructive: false, idempotent: true, openWorld: true)

    static func input(_ properties: JSONObject, required: [String]) -> JSONValue {
        ["type": "object", "properties": .object(properties), "required": JSONValue(required), "additionalProperties": false]
    }

    static func listOutput(_ key: String, item: JSONObject, itemRequired: [String], extra: JSONObject = JSONObject()) -> JSONValue {
        var props = extra
        props[key] = ["type": "array", "items": ["type": "object", "properties": .object(item), "required": JSONValue(itemRequired)]]
        props["count"] = ["type": "integer"]
        return ["type": "object", "properties": .object(props), "required": JSONValue([key, "count"])]
    }
}

/// One Power BI tool: a fixed name, and the client it calls Power BI with.
protocol PowerBITool: NamedTool {
    init(client: PowerBIClient)
}

// MARK: - Listings

struct ListWorkspacesTool: PowerBITool {
    static let name = "list_workspaces"
    let client: PowerBIClient

    var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name, title: "List Power BI workspaces",
            description: "Lists the Power BI workspaces you can use through this server, with their ids.",
            inputSchema: PowerBITools.input([
                "name_contains": ["type": "string", "maxLength": 200, "description": "Only workspaces whose name contains this text (case-insensitive)."],
            ], required: []),
            outputSchema: PowerBITools.listOutput("workspaces", item: ["id": PowerBITools.guid, "name": ["type": "string"]],
                                                  itemRequired: ["id", "name"], extra: ["accessMode": ["type": "string"]]),
            annotations: PowerBITools.readOnly, permission: PowerBITools.readPermission)
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let access = try client.access(for: context.caller)
        if let allowed = access.allowedWorkspaces, allowed.isEmpty {
            return .structured(["workspaces": [], "count": 0, "accessMode": .string(access.mode.rawValue)])
        }
        let workspaces = try client.list(access, path: "/groups", fields: ["id", "name", "type", "isReadOnly", "isOnDedicatedCapacity", "capacityId"],
                                         operation: .init(what: "listing workspaces",
                                                          delegatedNeeds: "your sign-in needs the Workspace.Read.All permission for this server's app"))
        let needle = arguments["name_contains"]?.stringValue?.lowercased()
        let items = workspaces.filter { w in
            guard let id = w["id"]?.stringValue?.lowercased() else { return false }
            if let allowed = access.allowedWorkspaces, !allowed.contains(id) { return false }
            if let needle, !(w["name"]?.stringValue?.lowercased().contains(needle) ?? false) { return false }
            return true
        }
        return .structured(["workspaces": .array(items), "count": .integer(items.count), "accessMode": .string(access.mode.rawValue)])
    }
}

/// The shape shared by the per-workspace listings.
protocol WorkspaceListing: PowerBITool {
    var client: PowerBIClient { get }
    static var title: String { get }
    static var noun: String { get }
    static var segment: String { get }
    static var fields: [String] { get }
    static var nameField: String { get }
    static var delegatedNeeds: String { get }
}

extension WorkspaceListing {
    var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name, title: Self.title,
            description: "Lists the \(Self.noun) in one Power BI workspace.",
            inputSchema: PowerBITools.input(["workspace_id": PowerBITools.idProperty("workspace")], required: ["workspace_id"]),
            outputSchema: PowerBITools.listOutput(Self.segment, item: ["id": PowerBITools.guid, Self.nameField: ["type": "string"]],
                                                  itemRequired: ["id"], extra: ["workspaceId": PowerBITools.guid]),
            annotations: PowerBITools.readOnly, permission: PowerBITools.readPermission)
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let access = try client.access(for: context.caller)
        let workspace = try client.checkWorkspace(arguments["workspace_id"]?.stringValue ?? "", access)
        let items = try client.list(access, path: "/groups/\(workspace)/\(Self.segment)", fields: Self.fields, operation: .init(
            what: "listing the \(Self.noun) of workspace \(workspace)", delegatedNeeds: Self.delegatedNeeds))
        return .structured([Self.segment: .array(items), "count": .integer(items.count), "workspaceId": .string(workspace)])
    }
}

struct ListDatasetsTool: WorkspaceListing {
    let client: PowerBIClient
    static let name = "list_datasets", title = "List Power BI datasets", noun = "datasets (semantic models)", segment = "datasets"
    static let fields = ["id", "name", "configuredBy", "isRefreshable", "createdDate", "webUrl"], nameField = "name"
    static let delegatedNeeds = "you need access to the workspace, and your sign-in needs Dataset.Read.All for this server's app"
}

struct ListReportsTool: WorkspaceListing {
    let client: PowerBIClient
    static let name = "list_reports", title = "List Power BI reports", noun = "reports", segment = "reports"
    static let fields = ["id", "name", "datasetId", "reportType", "webUrl"], nameField = "name"
    static let delegatedNeeds = "you need access to the workspace, and your sign-in needs Report.Read.All for this server's app"
}

struct ListDashboardsTool: WorkspaceListing {
    let client: PowerBIClient
    static let name = "list_dashboards", title = "List Power BI dashboards", noun = "dashboards", segment = "dashboards"
    static let fields = ["id", "displayName", "isReadOnly", "webUrl"], nameField = "displayName"
    static let delegatedNeeds = "you need access to the workspace, and your sign-in needs Dashboard.Read.All for this server's app"
}

// MARK: - Queries

extension PowerBIClient {
    static let executeQueriesNeeds = "you need Read and Build permission on the dataset, your sign-in needs Dataset.Read.All for this server's app, and the Power BI tenant setting \"Dataset Execute Queries REST API\" must be on"

    /// One DAX query through executeQueries.
    func executeQuery(_ access: Access, workspace: String, dataset: String, query: String, includeNulls: Bool, maxRows: Int) throws -> DAXResult {
        let body: JSONValue = ["queries": [["query": .string(query)]], "serializerSettings": ["includeNulls": .bool(includeNulls)]]
        var op = Operation(what: "running a DAX query on dataset \(dataset)", delegatedNeeds: Self.executeQueriesNeeds)
        op.servicePrincipalNeeds += "; datasets with row-level security or SSO cannot be queried by a service principal"
        // A query changes nothing, so a retry after a connect error or 5xx is safe.
        let (json, response) = try call(access, method: "POST", path: "/groups/\(workspace)/datasets/\(dataset)/executeQueries",
                                        body: body, idempotent: true, operation: op)
        guard let result = DAXResult.read(json, maxRows: maxRows) else {
            throw malformed(response, "a DAX query result (results, each with tables of rows, or an error)", operation: op)
        }
        return result
    }
}

struct ExecuteDAXQueryTool: PowerBITool {
    static let name = "execute_dax_query"
    let client: PowerBIClient

    var definition: ToolDefinition {
        let maxRows = client.config.maxRows
        return ToolDefinition(
            name: Self.name, title: "Run a DAX query",
            description: "Runs one DAX query (EVALUATE …) against a Power BI dataset and returns its rows. At most \(maxRows) rows are returned; `truncated` and `truncationReasons` say when there was more, and `errors` lists problems Power BI reported.",
            inputSchema: PowerBITools.input([
                "workspace_id": PowerBITools.idProperty("workspace"),
                "dataset_id": PowerBITools.idProperty("dataset"),
                "query": ["type": "string", "minLength": 1, "maxLength": .integer(client.config.maxDAXChars), "description": "One DAX query, e.g. EVALUATE TOPN(10, 'Sales')."],
                "max_rows": ["type": "integer", "minimum": 1, "maximum": .integer(maxRows), "description": .string("Return at most this many rows (default and limit \(maxRows)).")],
                "include_nulls": ["type": "boolean", "description": "Keep null values in rows (default false)."],
            ], required: ["workspace_id", "dataset_id", "query"]),
            outputSchema: [
                "type": "object",
                "properties": [
                    "columns": ["type": "array", "items": ["type": "string"]],
                    "rows": ["type": "array", "items": ["type": "object"]],
                    "rowCount": ["type": "integer"],
                    "truncated": ["type": "boolean"],
                    "truncationReasons": ["type": "array", "items": ["type": "string"]],
                    "errors": ["type": "array", "items": ["type": "object", "properties": ["level": ["type": "string"], "code": ["type": "string"], "message": ["type": "string"]], "required": ["level", "message"]]],
                ],
                "required": ["columns", "rows", "rowCount", "truncated", "truncationReasons", "errors"],
            ],
            annotations: PowerBITools.readOnly, permission: PowerBITools.readPermission)
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let (access, workspace, dataset) = try client.datasetTarget(arguments, caller: context.caller)
        let query = arguments["query"]?.stringValue ?? ""
        guard !query.trimmingASCIIWhitespaceAndNewlines().isEmpty, query.count <= client.config.maxDAXChars else {
            throw ToolError("query must be one DAX query of at most \(client.config.maxDAXChars) characters")
        }
        let maxRows = min(arguments["max_rows"]?.intValue ?? client.config.maxRows, client.config.maxRows)
        let result = try client.executeQuery(access, workspace: workspace, dataset: dataset, query: query,
                                             includeNulls: arguments["include_nulls"]?.boolValue ?? false, maxRows: maxRows)
        if !result.problems.isEmpty && result.returnedRows == 0 {
            // Nothing came back but errors: the model should read them as a failure.
            throw ToolError("The DAX query failed: " + result.problems.map { "\($0.level): \($0.code.map { "\($0): " } ?? "")\($0.message)" }.joined(separator: "; "))
        }
        return .structured(result.json)
    }
}

struct GetDatasetSchemaTool: PowerBITool {
    static let name = "get_dataset_schema"
    let client: PowerBIClient

    var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name, title: "Describe a Power BI dataset",
            description: "Returns the tables of a dataset with their columns and measures (from the DAX INFO functions), to write DAX queries against.",
            inputSchema: PowerBITools.input(["workspace_id": PowerBITools.idProperty("workspace"), "dataset_id": PowerBITools.idProperty("dataset")],
                                            required: ["workspace_id", "dataset_id"]),
            outputSchema: [
                "type": "object",
                "properties": [
                    "datasetId": PowerBITools.guid,
                    "tables": ["type": "array", "items": ["type": "object", "properties": [
                        "name": ["type": "string"], "columns": ["type": "array"], "measures": ["type": "array"]], "required": ["name", "columns", "measures"]]],
                ],
                "required": ["datasetId", "tables"],
            ],
            annotations: PowerBITools.readOnly, permission: PowerBITools.readPermission)
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let (access, workspace, dataset) = try client.datasetTarget(arguments, caller: context.caller)
        func rows(_ query: String) throws -> [JSONObject] {
            let r = try client.executeQuery(access, workspace: workspace, dataset: dataset, query: query, includeNulls: false,
                                            maxRows: PowerBIConfig.apiRowLimit)
            if !r.problems.isEmpty {
                throw ToolError("Reading the dataset schema failed (\(query)): " + r.problems.map(\.message).joined(separator: "; "))
            }
            // INFO functions name their columns "[Name]"; drop the brackets.
            return r.rows.compactMap { $0.objectValue }.map { o in
                JSONObject(pairs: o.map { (k, v) in (k.hasPrefix("[") && k.hasSuffix("]") ? String(k.dropFirst().dropLast()) : k, v) })
            }
        }
        let tables = try rows("EVALUATE INFO.VIEW.TABLES()")
        let columns = try rows("EVALUATE INFO.VIEW.COLUMNS()")
        let measures = try rows("EVALUATE INFO.VIEW.MEASURES()")
        func keep(_ o: JSONObject, _ fields: [String]) -> JSONValue {
            var out = JSONObject()
            for f in fields { if let v = o[f], !v.isNull { out[f] = v } }
            return .object(out)
        }
        var out: [JSONValue] = []
        for t in tables {
            guard let name = t["Name"]?.stringValue else { continue }
            var o = keep(t, ["Name", "Description", "IsHidden"]).objectValue ?? JSONObject()
            o["name"] = .string(name)
            o["Name"] = nil
            o["columns"] = .array(columns.filter { $0["Table"]?.stringValue == name }.map { keep($0, ["Name", "DataType", "IsHidden", "Description"]) })
            o["measures"] = .array(measures.filter { $0["Table"]?.stringValue == name }.map { keep($0, ["Name", "Expression", "FormatString", "Description"]) })
            out.append(.object(o))
        }
        return .structured(["datasetId": .string(dataset), "tables": .array(out)])
    }
}

// MARK: - Refreshes

struct GetRefreshHistoryTool: PowerBITool {
    static let name = "get_refresh_history"
    let client: PowerBIClient

    var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name, title: "Dataset refresh history",
            description: "Returns the most recent refreshes of a dataset: type, start and end time, status (Unknown while running, Completed, Failed, Disabled) and the error of failed ones.",
            inputSchema: PowerBITools.input([
                "workspace_id": PowerBITools.idProperty("workspace"), "dataset_id": PowerBITools.idProperty("dataset"),
                "top": ["type": "integer", "minimum": 1, "maximum": 60, "description": "How many of the latest refreshes (default 10)."],
            ], required: ["workspace_id", "dataset_id"]),
            outputSchema: PowerBITools.listOutput("refreshes", item: ["status": ["type": "string"]], itemRequired: [],
                                                  extra: ["datasetId": PowerBITools.guid]),
            annotations: PowerBITools.readOnly, permission: PowerBITools.readPermission)
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let (access, workspace, dataset) = try client.datasetTarget(arguments, caller: context.caller)
        let top = max(1, min(60, arguments["top"]?.intValue ?? 10))
        let items = try client.list(access, path: "/groups/\(workspace)/datasets/\(dataset)/refreshes?$top=\(top)",
                                    fields: ["requestId", "id", "refreshType", "startTime", "endTime", "status", "serviceExceptionJson"],
                                    operation: .init(what: "reading the refresh history of dataset \(dataset)",
                                                     delegatedNeeds: "you need access to the dataset, and your sign-in needs Dataset.Read.All for this server's app"))
        return .structured(["refreshes": .array(items), "count": .integer(items.count), "datasetId": .string(dataset)])
    }
}

struct TriggerRefreshTool: PowerBITool {
    static let name = "trigger_refresh"
    let client: PowerBIClient

    var definition: ToolDefinition {
        ToolDefinition(
            name: Self.name, title: "Start a dataset refresh",
            description: "Starts a refresh of a dataset now. Power BI runs it in the background; follow it with get_refresh_history. On shared capacity a dataset may refresh at most 8 times a day.",
            inputSchema: PowerBITools.input([
                "workspace_id": PowerBITools.idProperty("workspace"), "dataset_id": PowerBITools.idProperty("dataset"),
                "notify_option": ["type": "string", "enum": ["NoNotification", "MailOnFailure", "MailOnCompletion"],
                                  "description": "Mail the dataset owner (default NoNotification)."],
            ], required: ["workspace_id", "dataset_id"]),
            outputSchema: ["type": "object", "properties": ["accepted": ["type": "boolean"], "datasetId": PowerBITools.guid, "requestId": ["type": "string"]],
                           "required": ["accepted", "datasetId"]],
            annotations: ToolAnnotations(readOnly: false, destructive: false, idempotent: false, openWorld: true),
            permission: PowerBITools.refreshPermission)
    }

    func call(arguments: JSONObject, context: ToolContext) throws -> ToolResult {
        let (access, workspace, dataset) = try client.datasetTarget(arguments, caller: context.caller)
        let notify = arguments["notify_option"]?.stringValue ?? "NoNotification"
        let (_, response) = try client.call(access, method: "POST", path: "/groups/\(workspace)/datasets/\(dataset)/refreshes",
                                            body: ["notifyOption": .string(notify)], operation: .init(
            what: "starting a refresh of dataset \(dataset)",
            delegatedNeeds: "you need write access to the dataset (workspace Contributor or above), and your sign-in needs Dataset.ReadWrite.All for this server's app"))
        var out = JSONObject(pairs: [("accepted", true), ("datasetId", .string(dataset))])
        if let id = response.header("requestid") ?? response.header("x-ms-request-id") { out["requestId"] = .string(id) }
        return .structured(.object(out))
    }
}
