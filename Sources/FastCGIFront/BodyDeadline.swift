import FoundationEssentials

/// The time by which one request's body must have arrived. A client that announces a body and
/// then stalls would otherwise hold a worker for as long as the web server waits (Apache's
/// mod_proxy_fcgi and mod_fcgid stream the body as it comes in), and a handful of them hold all.
struct BodyDeadline {
    let seconds: Double
    private let end: ContinuousClock.Instant

    init(seconds: Double) {
        self.seconds = seconds
        end = .now + .milliseconds(Int64(seconds * 1000))
    }

    /// Whole milliseconds left, rounded up so a wait never ends early; nil once the deadline passed.
    var remainingMilliseconds: Int? {
        let left = end - .now
        guard left > .zero else { return nil }
        let (s, attoseconds) = left.components
        return Int(s) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}

/// The body did not arrive before its deadline; `received` bytes of it had.
package struct BodyDeadlinePassed: Error {
    package let received: Int
    package init(received: Int) { self.received = received }
}
