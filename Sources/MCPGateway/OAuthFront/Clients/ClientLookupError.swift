/// Why a client could not be looked up. Descriptions name the client id and what was wrong,
/// never a secret or a document's content.
package enum ClientLookupError: Error, CustomStringConvertible, Equatable {
    /// The client id is a metadata document URL whose document could not be fetched or used.
    case metadataDocumentRefused(clientId: String, reason: String)
    /// The shared store could not be read.
    case storeUnavailable(String)

    package var description: String {
        switch self {
        case .metadataDocumentRefused(let id, let reason): return "the client metadata document \(id) cannot be used: \(reason)"
        case .storeUnavailable(let detail): return "the server's shared store is unavailable: \(detail)"
        }
    }
}
