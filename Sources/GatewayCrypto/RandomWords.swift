#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import GatewaySupport

/// 64-bit words from the kernel's CSPRNG, drawn 32 at a time with one getentropy(3) (getrandom(2)):
/// a request id per request without the system call that the standard library's generator makes
/// per word. Not OpenSSL's generator: its first use in a process sets up the DRBG (3.3 M
/// instructions, more than a whole CGI request), and a CGI process draws only one word. Each
/// word is handed out once; a forked child forgets what its parent drew, so the two never share one.
package final class RandomWords: @unchecked Sendable {
    package static let shared: RandomWords = {
        let words = RandomWords()
        pthread_atfork(nil, nil) { RandomWords.shared.forget() }
        return words
    }()

    private let lock = Lock()
    // 256 bytes: the most one getentropy call returns.
    private var words = [UInt64](repeating: 0, count: 32)
    private var used = 32

    package func next() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        if used == words.count {
            guard words.withUnsafeMutableBytes({ getentropy($0.baseAddress, $0.count) }) == 0 else {
                // getrandom(2) failed (a kernel without it): the standard library's generator, which
                // falls back to /dev/urandom, one word at a time.
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
