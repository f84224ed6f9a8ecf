import EntraAuth
import GatewayCrypto
import GatewaySupport

/// `mcp-fcgi entra app-manifest`: exactly what an instance needs registered in Entra ID, and
/// the `az` commands that register it, from the instance's own configuration.
public struct EntraSetup {
    let config: GatewayConfig

    public init(config: GatewayConfig) { self.config = config }

    /// The API app's client id: the GUID among the accepted audiences.
    var apiClientId: String? { config.auth.audiences.first(where: IssuerTenantCheck.isGUID) }

    /// The Application ID URI: the `api://…` (or https) audience, else `api://<client id>`.
    var appIdURI: String {
        config.auth.audiences.first { $0.hasPrefix("api://") || $0.hasPrefix("https://") }
            ?? "api://\(apiClientId ?? "<API app client id>")"
    }

    /// The delegated scope names (the part after the App ID URI) clients ask for.
    var scopeNames: [String] {
        let scopes = config.oauth?.scopes ?? config.auth.scopesSupported
        let names = scopes.map { s in s.hasPrefix(appIdURI + "/") ? String(s.dropFirst(appIdURI.count + 1)) : s }
        return names.isEmpty ? ["mcp.tools"] : names
    }

    /// A stable GUID for a scope or role, so running the commands twice changes nothing:
    /// SHA-256 of its name in the UUID version 8 (custom) layout.
    static func stableId(_ text: String) -> String {
        let h = Array(SHA256Digest(Array(text.utf8)).hex)
        let variant = ["8", "9", "a", "b"][Int(String(h[16]), radix: 16)! % 4]
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-8" + String(h[13..<16]) + "-" + variant + String(h[17..<20])
            + "-" + String(h[20..<32])
    }

    public func text() -> String {
        let roles = config.permissions.rolePermissions.keys.sorted()
        let api = apiClientId ?? "<API app client id>"
        let gateway = config.credential?.clientId ?? "<gateway client id>"
        var out = "# Entra ID setup for instance \(config.instanceName) (\(config.server.publicURL))\n\n"
        out += "## 1. The API app: what MCP clients get access tokens for\n\n"
        out += "- Application (client) id: \(api) (auth.client_id / auth.audiences)\n"
        out += "- Application ID URI: \(appIdURI)\n"
        out += "- Access tokens: version 2 (manifest `api.requestedAccessTokenVersion: 2`)\n"
        out += "- Delegated scopes: " + scopeNames.map { "\(appIdURI)/\($0)" }.joined(separator: ", ") + "\n"
        out += "- App roles (assign users or groups to them; authorization.roles maps them to permissions): "
            + (roles.isEmpty ? "none configured" : roles.joined(separator: ", ")) + "\n\n"
        out += "## 2. The gateway's own app: a confidential web client (credential section)\n\n"
        out += "- Application (client) id: \(gateway)\n"
        out += "- Certificate or client secret: the one the credential section names\n"
        if let oauth = config.oauth {
            out += "- Redirect URI (platform Web): \(oauth.endpointBase)/oauth/callback\n"
            out += "- Delegated permissions: the scopes above, offline_access, openid (the authorization front signs users in)\n"
            out += "- MCP clients register with this server, not with Entra: nothing to register per client.\n"
        } else {
            out += "- Delegated permissions: the scopes above (for On-Behalf-Of to Power BI and backends)\n"
            out += "- Without an oauth section, every MCP client must be registered in Entra by hand (see the README).\n"
        }
        if config.powerBI != nil {
            out += "- Power BI: delegated Dataset.Read.All, Workspace.Read.All (Power BI Service API), and admin consent\n"
        }
        out += "\n## 3. The az commands\n\n```sh\n"
        out += "# The API app: its identifier, access token version and scopes (a stable id per scope).\n"
        out += "az ad app update --id \(api) --identifier-uris \(appIdURI) --set api.requestedAccessTokenVersion=2\n"
        let scopeJSON = scopeNames.map { name in
            "{\"id\":\"\(Self.stableId(appIdURI + "/" + name))\",\"value\":\"\(name)\",\"type\":\"User\",\"isEnabled\":true,"
                + "\"adminConsentDisplayName\":\"Use \(config.server.name) tools (\(name))\","
                + "\"adminConsentDescription\":\"Lets the app call \(config.server.name)'s MCP tools as the signed-in user.\","
                + "\"userConsentDisplayName\":\"Use \(config.server.name) tools\","
                + "\"userConsentDescription\":\"Lets the app call \(config.server.name)'s MCP tools as you.\"}"
        }.joined(separator: ",")
        out += "az ad app update --id \(api) --set api.oauth2PermissionScopes='[\(scopeJSON)]'\n"
        if !roles.isEmpty {
            let roleJSON = roles.map { role in
                "{\"id\":\"\(Self.stableId(appIdURI + "#role:" + role))\",\"value\":\"\(role)\",\"displayName\":\"\(role)\","
                    + "\"description\":\"\(role) of \(config.server.name)\",\"allowedMemberTypes\":[\"User\",\"Application\"],\"isEnabled\":true}"
            }.joined(separator: ",")
            out += "az ad app update --id \(api) --app-roles '[\(roleJSON)]'\n"
        }
        if let oauth = config.oauth {
            out += "# The gateway's app: its redirect URI for the sign-in it runs on behalf of MCP clients.\n"
            out += "az ad app update --id \(gateway) --web-redirect-uris \(oauth.endpointBase)/oauth/callback\n"
        }
        out += "# The gateway's app may ask for the API's scopes (then grant admin consent, or let users consent).\n"
        for name in scopeNames {
            out += "az ad app permission add --id \(gateway) --api \(api) --api-permissions \(Self.stableId(appIdURI + "/" + name))=Scope\n"
        }
        out += "az ad app permission admin-consent --id \(gateway)\n```\n"
        return out
    }
}
