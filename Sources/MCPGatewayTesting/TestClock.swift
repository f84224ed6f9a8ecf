import Foundation

/// A clock the test sets and moves by hand, handed to the code under test as `closure`.
/// `Seconds` is what that code reads: `Int64` for token checks, `Double` for upstream sessions.
package final class TestClock<Seconds: Numeric & Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Seconds

    package init(_ start: Seconds = 1_800_000_000) { value = start }

    package var now: Seconds {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }

    package func advance(_ seconds: Seconds) { lock.withLock { value += seconds } }

    package var closure: () -> Seconds { { [unowned self] in self.now } }
}
