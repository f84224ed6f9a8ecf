import FoundationEssentials
import GatewayStore
import GatewaySupport

/// The connections of one process: at most `poolSize`, each lent to one caller at a time.
/// A caller waits at most `poolWaitMilliseconds` for one to come free, so a slow or stuck
/// server turns into a prompt error (a 503 for the request), never a pile of waiting workers.
/// A connection that failed is dropped, with every idle one (a server restart ends them
/// all); the next use connects again.
final class PostgresPool: @unchecked Sendable {
    let settings: PostgresSettings
    private let condition = Condition()
    private var idle: [PostgresConnection] = []
    private var open = 0

    init(settings: PostgresSettings) {
        self.settings = settings
    }

    /// A connection that sat idle may have been ended by a server restart since; when it fails
    /// as lost, the call is made once more on a fresh connection, so a restart between two
    /// requests costs none of them. A statement sent on an ended connection never ran; one cut
    /// off by a crash right after its commit may run twice, which every statement here survives
    /// (a bucket loses one more token, a second redemption reads as a replay, batches are idempotent).
    @discardableResult
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let (connection, reused) = try acquire()
        do {
            return try use(connection, body)
        } catch let error as PostgresError where error.connectionLost && reused {
            let (fresh, _) = try acquire()
            return try use(fresh, body)
        }
    }

    private func use<T>(_ connection: PostgresConnection, _ body: (PostgresConnection) throws -> T) throws -> T {
        do {
            let value = try body(connection)
            release(connection, broken: !connection.isUsable)
            return value
        } catch let error as PostgresError {
            release(connection, broken: error.connectionLost || !connection.isUsable)
            throw error
        } catch {
            release(connection, broken: !connection.isUsable)
            throw error
        }
    }

    @discardableResult
    func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try withConnection { try $0.transaction(body) }
    }

    /// A connection, and whether it was idle in the pool (rather than just opened).
    private func acquire() throws -> (PostgresConnection, Bool) {
        let deadline = Condition.Deadline.after(seconds: Double(settings.poolWaitMilliseconds) / 1000)
        condition.lock()
        while idle.isEmpty && open >= settings.poolSize {
            guard whileBlocked({ condition.wait(until: deadline) }) else {
                condition.unlock()
                throw PostgresError(message: "no free connection within \(settings.poolWaitMilliseconds) ms " +
                                    "(all \(settings.poolSize) of this process busy)", sqlState: nil, connectionLost: false)
            }
        }
        if let connection = idle.popLast() {
            condition.unlock()
            return (connection, true)
        }
        open += 1
        condition.unlock()
        do {
            return (try whileBlocked { try PostgresConnection(parameters: settings.connectionParameters) }, false)
        } catch {
            condition.lock()
            open -= 1
            condition.signal()
            condition.unlock()
            throw error
        }
    }

    private func release(_ connection: PostgresConnection, broken: Bool) {
        condition.lock()
        if broken {
            open -= 1 + idle.count
            idle.removeAll()
        } else {
            idle.append(connection)
        }
        condition.broadcast()
        condition.unlock()
    }
}
