import MCPGateway
print(GatewayVersion.string)
