#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FoundationEssentials
import GatewaySupport

/// Which lane the calling thread writes through: threads are numbered in the order they first
/// write, and the number is kept in a thread-specific slot, so finding it costs no lock.
enum WriterLane {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "no thread-specific key for the audit journal's lanes")
        return key
    }()
    private static let numbering = Lock()
    nonisolated(unsafe) private static var threadsSeen = 0

    static func index(of laneCount: Int) -> Int {
        if let slot = pthread_getspecific(key) { return (Int(bitPattern: slot) - 1) % laneCount }
        let number = numbering.withLock { threadsSeen += 1; return threadsSeen }
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: number))
        return (number - 1) % laneCount
    }
}
