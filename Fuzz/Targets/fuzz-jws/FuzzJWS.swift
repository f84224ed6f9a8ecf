import EntraAuth
import MCPJSON

/// The compact JWS reader and the Entra claims policy on arbitrary bytes: the reader either
/// refuses or yields a header it checked and parts whose lengths add up; the policy answers every
/// claims object it is given (the signature is not what is fuzzed here, so every payload that
/// parses is evaluated).
private let policy = ClaimsPolicy.entra(
    issuerTemplates: ["https://login.microsoftonline.com/{tenantid}/v2.0", "https://sts.windows.net/{tenantid}/"],
    allowedTenants: ["72f988bf-86f1-41af-91ab-2d7cd011db47"], acceptAnyTenant: false,
    audiences: ["api://mcp-gateway", "00000000-0000-0000-0000-0000000000a1"],
    acceptDelegated: true, acceptAppOnly: true, clockSkewSeconds: 300)
private let anyTenantPolicy = ClaimsPolicy.entra(
    issuerTemplates: ["https://login.microsoftonline.com/{tenantid}/v2.0"], allowedTenants: [], acceptAnyTenant: true,
    audiences: ["api://mcp-gateway"], acceptDelegated: true, acceptAppOnly: false, clockSkewSeconds: 0)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJWS(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let all: Set<JWSAlgorithm> = [.rs256, .ps256, .es256]
    if let jws = try? CompactJWS(bytes: bytes, allowedAlgorithms: all) {
        precondition(all.contains(jws.header.algorithm))
        precondition(jws.signingInput.count < bytes.count && bytes[jws.signingInput.count] == UInt8(ascii: "."))
        precondition(!jws.signature.isEmpty)
        if let claims = try? jws.claims() { evaluate(claims) }
    }
    _ = try? CompactJWS(bytes: bytes, allowedAlgorithms: [.es256])
    // The same bytes as a payload on their own, so the policy sees every shape of claims.
    if let value = try? JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 8, maxBytes: 16 << 10, maxStringBytes: 8 << 10)),
       case .object(let claims) = value {
        evaluate(claims)
    }
    // base64url: what decodes re-encodes to the same text.
    if let decoded = Base64.decodeURL(bytes) {
        precondition(Array(Base64.encodeURL(decoded).utf8) == bytes, "base64url decode → encode changed the text")
    }
    return 0
}

private func evaluate(_ claims: JSONObject) {
    // Clocks a host can have: now, the epoch, and the last second a 64-bit time_t will see this millennium.
    for now: Int64 in [1_764_633_600, 0, 32_503_680_000] {
        for p in [policy, anyTenantPolicy] {
            _ = p.evaluate(TokenClaims(claims: claims, signingKeyIssuer: nil, now: now))
            _ = p.evaluate(TokenClaims(claims: claims, signingKeyIssuer: "https://login.microsoftonline.com/{tenantid}/v2.0", now: now))
        }
    }
}
