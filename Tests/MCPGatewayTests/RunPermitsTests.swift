import Foundation
import GatewaySupport
import MCPGatewayTesting
import UpstreamHTTP
import XCTest

/// FastCGI's run permits: at most `limit` workers run at once, a worker waiting outside the
/// process lends its permit, and one coming back never waits.
final class RunPermitsTests: XCTestCase {
    /// A flag one thread raises and another waits for, with a bound.
    private final class Flag: @unchecked Sendable {
        private let c = Condition()
        private var raised = false
        func raise() { c.lock(); raised = true; c.broadcast(); c.unlock() }
        func wait(seconds: Double) -> Bool {
            c.lock(); defer { c.unlock() }
            let deadline = Condition.Deadline.after(seconds: seconds)
            while !raised && c.wait(until: deadline) {}
            return raised
        }
    }

    /// Six threads of their own (not a pool sized to the cores, which would never exceed the
    /// limit on a 2-core machine), each sleeping inside: without the permits all six overlap.
    func testNoMoreThanTheLimitRunAtOnce() {
        let permits = RunPermits(limit: 2)
        let lock = Lock()
        var inside = 0, most = 0, served = 0, overLimit = 0
        let threads = 6, rounds = 25
        let finished = DispatchGroup()
        for _ in 0..<threads {
            finished.enter()
            Thread.detachNewThread {
                defer { finished.leave() }
                XCTAssertTrue(permits.take())
                for _ in 0..<rounds {
                    lock.withLock { inside += 1; most = max(most, inside) }
                    usleep(1000)
                    lock.withLock { inside -= 1; served += 1 }
                    if permits.giveBackIfOverLimit() { lock.withLock { overLimit += 1 } }
                }
                permits.release()
            }
        }
        XCTAssertEqual(finished.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(served, threads * rounds)
        XCTAssertEqual(most, 2, "two at once, never more")
        XCTAssertEqual(overLimit, 0, "nobody ran over the limit")
        XCTAssertEqual(permits.holders, 0)
    }

    /// A wait inside a wait lends nothing more: the count comes back to where it was.
    func testANestedWaitLendsOnce() {
        let permits = RunPermits(limit: 2)
        XCTAssertTrue(permits.take())
        RunPermits.setHeldByCurrentThread(permits)
        defer { RunPermits.setHeldByCurrentThread(nil) }
        let during = whileBlocked { () -> (Int, Int) in
            let outer = permits.holders
            let inner = whileBlocked { permits.holders }
            return (outer, inner)
        }
        XCTAssertEqual(during.0, 0)
        XCTAssertEqual(during.1, 0, "the inner wait lent nothing more (the count never goes below zero)")
        XCTAssertEqual(permits.holders, 1)
        permits.release()
    }

    /// A worker waiting for a lock whose holder waits outside with its permit lent lends its own,
    /// so a third worker runs meanwhile.
    func testWaitingForALockLendsThePermit() {
        let permits = RunPermits(limit: 1)
        let shared = Lock()
        shared.lock()  // held by "another worker" that has lent its permit
        let waiterHasPermit = Flag(), third = Flag(), waiterGotIt = Flag()
        Thread.detachNewThread {
            guard permits.take() else { return }
            RunPermits.setHeldByCurrentThread(permits)
            waiterHasPermit.raise()
            shared.lockWhileBlocked()
            shared.unlock()
            RunPermits.setHeldByCurrentThread(nil)
            waiterGotIt.raise()
            permits.release()
        }
        XCTAssertTrue(waiterHasPermit.wait(seconds: 10))
        Thread.detachNewThread {
            guard permits.take() else { return }  // parks until the waiter lends its permit
            third.raise()
            permits.release()
        }
        XCTAssertTrue(third.wait(seconds: 10), "the third worker ran while the waiter waited for the lock")
        shared.unlock()
        XCTAssertTrue(waiterGotIt.wait(seconds: 10))
        var settled = false
        for _ in 0..<1000 where !settled { settled = permits.holders == 0; if !settled { usleep(1000) } }
        XCTAssertTrue(settled)
    }

    func testAWorkerWaitingOutsideLendsItsPermitToAParkedOne() {
        let permits = RunPermits(limit: 1)
        XCTAssertTrue(permits.take())
        RunPermits.setHeldByCurrentThread(permits)
        defer { RunPermits.setHeldByCurrentThread(nil) }
        let parkedOneRan = Flag()
        Thread.detachNewThread {
            guard permits.take() else { return }  // parks until the permit is lent
            parkedOneRan.raise()
            permits.release()
        }
        usleep(20_000)
        XCTAssertEqual(permits.holders, 1, "the second worker is parked")
        let ranMeanwhile = whileBlocked { parkedOneRan.wait(seconds: 10) }
        XCTAssertTrue(ranMeanwhile, "the parked worker ran while this one waited")
        XCTAssertEqual(permits.holders, 1, "the permit is back with this worker")
        permits.release()
    }

    func testAWorkerComingBackNeverWaitsAndTheCountSettlesAtTheLimit() {
        let permits = RunPermits(limit: 1)
        XCTAssertTrue(permits.take())
        permits.lend()
        let other = Flag(), done = Flag()
        Thread.detachNewThread {
            XCTAssertTrue(permits.take())
            other.raise()
            _ = done.wait(seconds: 10)
            XCTAssertTrue(permits.giveBackIfOverLimit(), "the first to finish a request over the limit parks")
        }
        XCTAssertTrue(other.wait(seconds: 10))
        permits.reclaim()  // at once, though the other worker holds the only permit
        XCTAssertEqual(permits.holders, 2)
        done.raise()
        var settled = false
        for _ in 0..<1000 where !settled { settled = permits.holders == 1; if !settled { usleep(1000) } }
        XCTAssertTrue(settled)
        XCTAssertFalse(permits.giveBackIfOverLimit())
        permits.release()
        XCTAssertEqual(permits.holders, 0)
    }

    func testClosingWakesParkedWorkersToStop() {
        let permits = RunPermits(limit: 1)
        XCTAssertTrue(permits.take())
        let answered = Flag()
        let answer = Lock()
        var took: Bool?
        Thread.detachNewThread {
            let t = permits.take()
            answer.withLock { took = t }
            answered.raise()
        }
        usleep(20_000)
        permits.close()
        XCTAssertTrue(answered.wait(seconds: 10))
        XCTAssertEqual(answer.withLock { took }, false)
        XCTAssertFalse(permits.take(), "closed: no permit for anyone")
    }

    func testWithoutAPermitAWaitJustRuns() {
        let permits = RunPermits(limit: 1)
        XCTAssertTrue(permits.take())
        XCTAssertEqual(whileBlocked { 7 }, 7)
        XCTAssertEqual(permits.holders, 1, "this thread was not marked as holding one: nothing lent")
        permits.release()
    }

    /// The HTTP client's transfer is such a wait: a worker held by a slow upstream lets another run.
    func testAnUpstreamCallLendsThePermit() throws {
        let server = try ScriptedHTTPServer { _ in .init(body: "{}", delay: 1) }
        defer { server.stop() }
        var options = CurlHTTPClientOptions()
        options.allowInsecureHTTPForTesting = true
        let client = CurlHTTPClient(options: options)
        let permits = RunPermits(limit: 1)
        XCTAssertTrue(permits.take())
        RunPermits.setHeldByCurrentThread(permits)
        defer { RunPermits.setHeldByCurrentThread(nil) }
        let ranMeanwhile = Flag()
        Thread.detachNewThread {
            guard permits.take() else { return }  // parks until the transfer lends the permit
            ranMeanwhile.raise()
            permits.release()
        }
        let response = try client.send(UpstreamRequest(url: server.baseURL + "/slow"))
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(ranMeanwhile.wait(seconds: 10), "this worker still holds its permit: only a lent one lets the other run")
        XCTAssertGreaterThanOrEqual(response.elapsedSeconds, 0.9)
        XCTAssertEqual(permits.holders, 1)
        permits.release()
    }
}
