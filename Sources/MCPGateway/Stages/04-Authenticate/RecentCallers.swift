#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EntraAuth

/// The callers the calling thread built last, kept in a thread-specific slot (no lock): a
/// client's next request on the same thread, with the same token, finds its caller built
/// already (its permissions, tenant record and key, and its identity once shown), instead of
/// building them again on every request. A caller is reused only for the same principal, just
/// verified from the same token, by the same authenticator: what it was built from, since
/// building depends on nothing else (the authenticator's configuration never changes).
enum RecentCallers {
    /// Per thread: a handful covers a thread's active clients; a miss only builds the caller.
    static let capacity = 4

    private final class Slots {
        var entries: [(owner: ObjectIdentifier, principal: Principal, token: String?, caller: Caller)] = []
        var next = 0
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // The destructor releases a finished thread's slots.
        precondition(pthread_key_create(&key, { raw in
            if let raw { Unmanaged<AnyObject>.fromOpaque(raw).release() }
        }) == 0,
                     "no thread-specific key for the recent callers")
        return key
    }()

    private static var slots: Slots {
        if let raw = pthread_getspecific(key) { return Unmanaged<Slots>.fromOpaque(raw).takeUnretainedValue() }
        let made = Slots()
        pthread_setspecific(key, Unmanaged.passRetained(made).toOpaque())
        return made
    }

    /// The caller `build` makes for `principal` and `token`, reused from this thread's last few.
    static func caller(of owner: AnyObject, principal: Principal, token: String?, build: () -> Caller) -> Caller {
        let slots = slots
        let id = ObjectIdentifier(owner)
        for entry in slots.entries where entry.owner == id && entry.token == token && entry.principal == principal {
            return entry.caller
        }
        let caller = build()
        if slots.entries.count < capacity {
            slots.entries.append((id, principal, token, caller))
        } else {
            slots.entries[slots.next] = (id, principal, token, caller)
            slots.next = (slots.next + 1) % capacity
        }
        return caller
    }
}
