import MCPGateway
import MCPJSON

/// Client ID Metadata Documents on arbitrary bytes (a fetched 200 body): refused with a reason or
/// read into metadata that stores and reads back unchanged, with bounded redirect URIs. The same
/// bytes are also read as a Cache-Control value, whose lifetime must stay within the bounds.
private let clientId = "https://client.example.com/oauth/metadata.json"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientMetadata(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    for hosts in [nil, ["client.example.com", "localhost"]] as [[String]?] {
        let metadata: ClientMetadata
        do throws(ClientLookupError) {
            metadata = try ClientMetadataDocumentFetcher.read(document: bytes, clientId: clientId, maxBytes: 5120,
                                                              redirectHosts: hosts)
        } catch {
            precondition(!error.description.isEmpty)
            continue
        }
        precondition(!metadata.redirectURIs.isEmpty && metadata.redirectURIs.count <= ClientMetadata.maxRedirectURIs)
        precondition(ClientMetadata(stored: metadata.json) == metadata, "store → read changed the metadata")
    }
    let lifetime = ClientMetadataDocumentFetcher.cacheLifetime(String(decoding: bytes, as: UTF8.self))
    let bounds = ClientMetadataDocumentFetcher.cacheSeconds
    precondition((bounds.minimum...bounds.maximum).contains(lifetime), "cache lifetime \(lifetime) out of bounds")
    return 0
}
