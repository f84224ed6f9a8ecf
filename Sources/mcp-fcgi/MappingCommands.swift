import GatewayStore
import ArgumentParser
import FoundationEssentials
import MCPGateway
import GatewaySupport

/// Which user or group a mapping is for, and in which tenant.
struct MappingTarget: ParsableArguments {
    @Option(help: "Tenant id.") var tenant: String
    @Option(help: "User object id.") var user: String?
    @Option(help: "Group object id.") var group: String?
    @Option(help: "Power BI workspace id.") var workspace: String

    func mapping() throws -> WorkspaceMapping {
        switch (user, group) {
        case (let u?, nil): return try WorkspaceMapping(tenant: tenant, kind: .user, principal: u, workspace: workspace)
        case (nil, let g?): return try WorkspaceMapping(tenant: tenant, kind: .group, principal: g, workspace: workspace)
        default: throw ValidationError("name exactly one of --user or --group")
        }
    }
}

struct MappingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mapping", abstract: "Which Power BI workspaces users and groups may use in service-principal mode.",
        subcommands: [Add.self, Remove.self, List.self, Import.self])

    struct Add: ParsableCommand {
        @OptionGroup var configFile: ConfigFileOption
        @OptionGroup var target: MappingTarget
        func run() throws {
            let m = try target.mapping()
            try withStore(configFile) { try $0.mappings.addMappings([m]) }
            print("mapped \(m.kind.rawValue) \(m.principal) to workspace \(m.workspace) in tenant \(m.tenant)")
        }
    }

    struct Remove: ParsableCommand {
        @OptionGroup var configFile: ConfigFileOption
        @OptionGroup var target: MappingTarget
        func run() throws {
            let m = try target.mapping()
            let removed = try withStore(configFile) { try $0.mappings.removeMapping(m) }
            print(removed ? "removed" : "no such mapping")
            if !removed { throw ExitCode(1) }
        }
    }

    struct List: ParsableCommand {
        @OptionGroup var configFile: ConfigFileOption
        @Option(help: "Only this tenant.") var tenant: String?
        func run() throws {
            print(MappingCSV.header)
            for m in try withStore(configFile, { try $0.mappings.mappings(tenant: tenant) }) {
                print("\(m.tenant),\(m.kind.rawValue),\(m.principal),\(m.workspace)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add every mapping in a CSV file (the format `list` prints), all or none.")
        @OptionGroup var configFile: ConfigFileOption
        @Argument(help: "CSV file with the header tenant,kind,principal,workspace.") var file: String
        func run() throws {
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            switch MappingCSV.parse(String(decoding: data, as: UTF8.self)) {
            case .failure(let problems):
                for p in problems.lines { writeStandardError("\(file): \(p)\n") }
                throw ExitCode(65)  // EX_DATAERR
            case .success(let mappings):
                try withStore(configFile) { try $0.mappings.addMappings(mappings) }
                print("imported \(mappings.count) mappings")
            }
        }
    }
}
