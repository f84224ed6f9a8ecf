#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// 64-bit words from OpenSSL's CSPRNG (`SecureRandom`), drawn 64 at a time: a request id per
/// request without the getrandom(2) that the standard library's generator makes per word. Each
/// word is handed out once; a forked child forgets what its parent drew, so the two never share one.
package final class RandomWords: @unchecked Sendable {
    package static let shared: RandomWords = {
        let words = RandomWords()
        pthread_atfork(nil, nil) { RandomWords.shared.forget() }
        return words
    }()

    private let lock = NSLock()
    private var words = [UInt64](repeating: 0, count: 64)
    private var used = 64

    package func next() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        if used == words.count {
            guard words.withUnsafeMutableBytes({ SecureRandom.fill($0) }) else {
                // OpenSSL's generator failed: the kernel's, one word at a time.
                var generator = SystemRandomNumberGenerator()
                return generator.next()
            }
            used = 0
        }
        defer { used += 1 }
        return words[used]
    }

    private func forget() {
        // In the child right after fork: only the forking thread exists, so no one holds the lock.
        used = words.count
    }
}
