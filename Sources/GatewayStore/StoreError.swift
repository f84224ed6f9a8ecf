/// Why the store could not do what was asked, or why a value for it is invalid.
public struct StoreError: Error, CustomStringConvertible {
    public let description: String
    package init(_ d: String) { description = d }
}
