/// A failure to start or keep serving, worded for the operator.
public struct ServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
