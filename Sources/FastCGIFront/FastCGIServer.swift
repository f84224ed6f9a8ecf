import GatewaySupport
import CFastCGI
import FoundationEssentials
import Glibc
import MCPJSON

/// A libfcgi responder: a pool of worker threads, each with its own FCGX_Request,
/// all of them waiting in accept() together, and a graceful stop on SIGTERM/SIGINT.
public final class FastCGIServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var workers: Int
        public var maxBodyBytes: Int
        public var shutdownGrace: Double
        public var socketMode: mode_t
        public var backlog: Int32
        /// How long a request's body may take to arrive before it is answered 408 and the worker freed.
        public var bodyTimeoutSeconds: Double
        /// At most this many workers run request work at once (RunPermits); nil or at least
        /// `workers`: no limit.
        public var runningWorkers: Int?

        public init(workers: Int, maxBodyBytes: Int, shutdownGrace: Double, socketMode: mode_t = 0o660, backlog: Int32 = 128,
                    bodyTimeoutSeconds: Double = 10, runningWorkers: Int? = nil) {
            self.workers = workers
            self.runningWorkers = runningWorkers
            self.maxBodyBytes = maxBodyBytes
            self.shutdownGrace = shutdownGrace
            self.socketMode = socketMode
            self.backlog = backlog
            self.bodyTimeoutSeconds = bodyTimeoutSeconds
        }
    }

    private let answering: RequestAnswering
    private let options: Options
    /// nil when every worker may run at once.
    private let permits: RunPermits?
    private let stateLock = Lock()
    private var stopping = false
    private var running = 0
    private var threads: [pthread_t] = []
    private var listenFD: Int32 = 0

    public init(handler: RequestHandler, options: Options) {
        self.options = options
        self.permits = options.runningWorkers.flatMap { $0 >= 1 && $0 < options.workers ? RunPermits(limit: $0) : nil }
        self.answering = RequestAnswering(handler: handler, maxBodyBytes: options.maxBodyBytes)
    }

    /// True when fd 0 is a listening socket, i.e. a spawner such as mod_fcgid started us.
    public static func stdinIsListeningSocket() -> Bool {
        FCGX_IsCGI() == 0
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish. Returns the exit
    /// status: 0 after a clean stop, 1 when the grace period ended with requests still running.
    public func run(listen address: ListenAddress) throws -> Int32 {
        // FCGX_Init reads the allow-list once, so it is set first. (Nothing has initialised
        // libfcgi before: stdinIsListeningSocket runs only without --listen, never for TCP.)
        let webServers = try WebServerAddresses.allowList(for: address, environment: ProcessInfo.processInfo.environment)
        if let webServers { setenv(WebServerAddresses.variable, webServers, 1) }
        guard FCGX_Init() == 0 else { throw ServerError("libfcgi failed to initialise") }
        switch address {
        case .inherited:
            listenFD = 0
        case .activated(let fd):
            listenFD = fd
        case .unix, .tcp:
            let fd = FCGX_OpenSocket(address.libfcgiPath, options.backlog)
            guard fd >= 0 else { throw ServerError("cannot listen on \(address.libfcgiPath): \(String(cString: strerror(errno)))") }
            listenFD = fd
            if case .unix(let p) = address, chmod(p, options.socketMode) != 0 {
                throw ServerError("cannot set mode on \(p): \(String(cString: strerror(errno)))")
            }
        }

        // Only the main thread takes SIGTERM/SIGINT (via sigtimedwait); workers keep SIGUSR1,
        // which libfcgi turns into "shutdown pending" and which interrupts a blocked accept.
        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        sigaddset(&stopSignals, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &stopSignals, nil)

        let listen = JSONValue.string(address == .inherited ? "fd 0" : address.libfcgiPath)
        let runningWorkers = JSONValue.integer(permits?.limit ?? options.workers)
        if let webServers {
            Log.shared.info("serving FastCGI", ["listen": listen, "workers": .integer(options.workers),
                                                 "running_workers": runningWorkers, "web_server_addrs": .string(webServers)])
        } else {
            Log.shared.info("serving FastCGI", ["listen": listen, "workers": .integer(options.workers),
                                                 "running_workers": runningWorkers])
        }
        for i in 0..<options.workers { startWorker(index: i) }

        var signalNumber: Int32 = 0
        while true {
            var timeout = timespec(tv_sec: 0, tv_nsec: 200_000_000)
            var info = siginfo_t()
            let s = sigtimedwait(&stopSignals, &info, &timeout)
            if s > 0 { signalNumber = s; break }
            if stateLock.withLock({ running }) == 0 { break }  // every worker ended on its own
        }
        if signalNumber != 0 {
            Log.shared.info("stopping: no new requests, finishing the ones in flight",
                            ["signal": .integer(Int(signalNumber)), "grace_seconds": .double(options.shutdownGrace)])
        }
        return stop()
    }

    private func stop() -> Int32 {
        stateLock.withLock { stopping = true }
        permits?.close()  // parked workers wake and end
        let deadline = Date().addingTimeInterval(options.shutdownGrace)
        // Keep nudging workers that sit in accept() or wait on a kept connection: a signal
        // that lands between two system calls would otherwise be missed.
        while stateLock.withLock({ running }) > 0 && Date() < deadline {
            for t in stateLock.withLock({ threads }) { pthread_kill(t, SIGUSR1) }
            usleep(20_000)
        }
        let left = stateLock.withLock { running }
        if left > 0 {
            Log.shared.warning("grace period over with requests still running", ["requests": .integer(left)])
            return 1  // the supervisor should know some answers were cut off
        }
        Log.shared.info("stopped cleanly")
        return 0
    }

    private final class WorkerBox {
        let server: FastCGIServer
        let index: Int
        init(server: FastCGIServer, index: Int) { self.server = server; self.index = index }
    }

    private func startWorker(index: Int) {
        stateLock.withLock { running += 1 }
        let box = Unmanaged.passRetained(WorkerBox(server: self, index: index)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<WorkerBox>.fromOpaque(raw!).takeRetainedValue()
            box.server.workerLoop()
            return nil
        }, box)
        if rc != 0 {
            stateLock.withLock { running -= 1 }
            Log.shared.error("cannot start worker thread", ["errno": .integer(Int(rc))])
            return
        }
        stateLock.withLock { threads.append(thread) }
    }

    private func workerLoop() {
        defer { stateLock.withLock { running -= 1 } }
        var request = FCGX_Request()
        guard FCGX_InitRequest(&request, listenFD, Int32(FCGI_FAIL_ACCEPT_ON_INTR)) == 0 else { return }
        defer { FCGX_Free(&request, 1) }
        // The worker holds a permit whenever it serves (see RunPermits), so the waits in serve()
        // may lend it.
        RunPermits.setHeldByCurrentThread(permits)
        var holdsPermit = false
        defer { if holdsPermit { permits?.release() } }
        var failures = 0
        while !stateLock.withLock({ stopping }) {
            if let permits {
                // A kept connection's next request may be long in coming (nginx holds idle ones
                // open): wait for it without a permit. A fresh accept() waits with one.
                let keptConnectionPending = request.ipcFd >= 0
                if keptConnectionPending && holdsPermit {
                    permits.lend()
                    holdsPermit = false
                } else if !keptConnectionPending && !holdsPermit {
                    guard permits.take() else { break }
                    holdsPermit = true
                }
            }
            // Every worker waits in accept() on the shared socket at once: libfcgi on Linux takes no
            // lock there, and the kernel hands each connection to one waiter. A lock of our own
            // would cost a futex hand-off per request and hold the others while the accepted
            // connection's first bytes are awaited (libfcgi polls up to 2 s for them).
            let accepted = stateLock.withLock({ stopping }) ? -1 : FCGX_Accept_r(&request)
            if let permits, !holdsPermit {
                permits.reclaim()
                holdsPermit = true
            }
            if accepted < 0 {
                if stateLock.withLock({ stopping }) { break }
                // A peer that went away or a stray signal: try again, but never spin. libfcgi
                // also fails every accept after an outside SIGUSR1 (its "shutdown pending"),
                // so a long run of failures is taken as a request to stop.
                failures += 1
                if failures >= 200 {
                    Log.shared.warning("accept keeps failing; stopping this worker", ["errno": .integer(Int(errno))])
                    break
                }
                usleep(5_000)
                continue
            }
            failures = 0
            let served = serve(&request)
            // libfcgi's own close (a connection not kept, or a kept one whose input failed)
            // waits for the web server to close its side; the rest of a large answer may wait
            // on a peer that reads slowly.
            let inputFailed = request.in.map { FCGX_GetError($0) != 0 } ?? true
            let closesSlowly = !served.closedAtOnce && (request.keepConnection == 0 || inputFailed)
            if closesSlowly || served.wroteLarge {
                whileBlocked { FCGX_Finish_r(&request) }
            } else {
                FCGX_Finish_r(&request)
            }
            // Over the limit after a lent wait: the first worker with no connection to keep parks.
            if let permits, holdsPermit, request.ipcFd < 0, permits.giveBackIfOverLimit() { holdsPermit = false }
        }
    }

    /// Whether the connection was closed at once (FCGX_Detach), and whether the answer had a
    /// write large enough to fill the socket's buffer (so its last bytes may still wait).
    private func serve(_ request: inout FCGX_Request) -> (closedAtOnce: Bool, wroteLarge: Bool) {
        let input = request.in, output = request.out, connection = request.ipcFd
        let kept = request.keepConnection != 0
        let deadline = BodyDeadline(seconds: options.bodyTimeoutSeconds)
        var receiveTimeout: Int?
        var wroteLarge = false
        answering.answer(params: request.envp, readBody: { n throws(BodyDeadlinePassed) in
            try FastCGIServer.read(input, from: connection, upTo: n, by: deadline, connectionKept: kept,
                                   receiveTimeoutLeft: &receiveTimeout)
        }) { bytes in
            let write = { bytes.withMemoryRebound(to: CChar.self) { FCGX_PutStr($0.baseAddress, Int32($0.count), output) == Int32($0.count) } }
            // A write that fits the socket's buffer does not wait; a larger one may wait on the peer.
            if bytes.count < FastCGIServer.writeThatMayWaitBytes { return write() }
            wroteLarge = true
            return whileBlocked(write)
        }
        if kept { return (false, wroteLarge) }
        // After a large answer the close's flush of its last bytes may wait on the peer too.
        let closed = wroteLarge
            ? whileBlocked { FastCGIServer.closeAtOnceIfInputEnded(&request, receiveTimeout: receiveTimeout) }
            : FastCGIServer.closeAtOnceIfInputEnded(&request, receiveTimeout: receiveTimeout)
        return (closed, wroteLarge)
    }

    /// Writes from this size up lend the worker's run permit: smaller ones fit the socket's send
    /// buffer (at least 16 kB for TCP, about 200 kB for a unix socket) and return at once.
    static let writeThatMayWaitBytes = 16 * 1024

    /// The longest the end-of-input check waits for the web server's closing stdin record
    /// (libfcgi's own close waits as long per read). When the record never comes, that close
    /// follows, so a worker is held at most twice this by a peer that does not finish its input.
    static let endOfInputWaitMilliseconds = 2_000

    /// A connection the web server does not keep. libfcgi's close shuts down the sending side and
    /// then waits for the web server to close its side, reading whatever it still sends, so that
    /// unread input cannot turn the close into a reset that loses the response: the worker is held
    /// for that round trip through the web server, and can accept nobody meanwhile. Once the
    /// stdin stream's closing record is read, the web server sends nothing more for this request,
    /// so nothing can be left unread and a plain close is as safe. So the response (and its
    /// FCGI_END_REQUEST) is written out first, then the closing record is looked for (normally it
    /// is already in libfcgi's buffer, read with the body), and only if it is there, with no error
    /// on either stream, does FCGX_Finish_r close the connection at once (FCGX_Detach). Anything
    /// else (a body left unread, a stream error, the record not arriving in time) keeps libfcgi's
    /// close, and so does any role but the responder's (a filter's FCGI_DATA follows its stdin).
    /// `receiveTimeout`: the connection's receive timeout in milliseconds, nil if none is set.
    /// Returns true when it closed the connection at once.
    @discardableResult
    static func closeAtOnceIfInputEnded(_ request: inout FCGX_Request, receiveTimeout: Int?) -> Bool {
        guard request.role == FCGI_RESPONDER, let input = request.in, FCGX_GetError(input) == 0 else { return false }
        // FCGX_Finish_r's own FClose calls are no-ops after these.
        FCGX_FClose(request.err)
        FCGX_FClose(request.out)
        guard FCGX_GetError(request.out) == 0, FCGX_GetError(request.err) == 0 else { return false }
        if FCGX_HasSeenEOF(input) != EOF {
            // The read below may have to wait for the record: never without a bound, nor longer
            // than libfcgi's own close would.
            // A refill whose bytes libfcgi holds already (nginx sends the record with the body)
            // reads nothing, so it needs no timeout: a system call saved per request.
            let buffered = refillNeedsNoRead(input)
            if !buffered, receiveTimeout.map({ $0 > endOfInputWaitMilliseconds }) ?? true {
                setReceiveTimeout(request.ipcFd, milliseconds: endOfInputWaitMilliseconds)
            }
            // EOF here is the closing record, unless the stream records an error (a timeout, a
            // connection closed without it); a byte is input the request did not read.
            let next = buffered || socketHasInput(request.ipcFd) ? FCGX_GetChar(input) : whileBlocked { FCGX_GetChar(input) }
            guard next == EOF else { return false }
        }
        guard FCGX_GetError(input) == 0 else { return false }
        FCGX_Detach(&request)
        return true
    }

    /// True when the stream's next refill will not wait on the peer: libfcgi holds what that
    /// refill reads (see the CFastCGI shim), or the connection has bytes (or its end) waiting.
    /// Mostly the former: libfcgi reads what nginx sent with the params, body included, at once.
    /// `read` and the end-of-input check ask its two halves in turn, as the first also decides
    /// whether the refill needs a receive timeout.
    static func inputIsThere(_ stream: UnsafeMutablePointer<FCGX_Stream>, connection: Int32) -> Bool {
        refillNeedsNoRead(stream) || socketHasInput(connection)
    }

    /// True when the connection has bytes (or its end) waiting; never waits.
    private static func socketHasInput(_ connection: Int32) -> Bool {
        var ready = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        return poll(&ready, 1, 0) == 1
    }

    /// True when the stream's next refill reads nothing from the connection: the stream has
    /// ended, or libfcgi holds what the refill hands out (see the CFastCGI shim). Such a refill
    /// cannot wait, so it needs no receive timeout. Bytes in the socket are not enough for that:
    /// the refill may need more than have come.
    static func refillNeedsNoRead(_ stream: UnsafeMutablePointer<FCGX_Stream>) -> Bool {
        stream.pointee.isClosed != 0 || mcp_fcgx_refill_needs_no_read(stream) != 0
    }

    /// Up to `limit` bytes of the request's stdin, fewer only at end of input. FCGX_GetStr blocks
    /// until it has every byte asked for, so it is asked only for what libfcgi has buffered, or
    /// for one byte when nothing is; before each such refill the connection's receive timeout is
    /// set to what is left of the deadline. A read that times out closes the stream (libfcgi
    /// records the error, and FCGX_Finish_r then closes the connection instead of keeping it).
    /// `receiveTimeoutLeft`: the receive timeout set on the connection (ms), nil while none is.
    static func read(_ stream: UnsafeMutablePointer<FCGX_Stream>?, from connection: Int32, upTo limit: Int,
                     by deadline: BodyDeadline, connectionKept: Bool = true,
                     receiveTimeoutLeft: inout Int?) throws(BodyDeadlinePassed) -> [UInt8] {
        guard let stream, limit > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: limit)
        var filled = 0
        // A kept connection waits for its next request without a timeout; one the web server
        // asked to close is closed after this request, so it needs no reset (a system call saved),
        // and the end-of-input check after the answer reads under the timeout left set.
        defer {
            if connectionKept && receiveTimeoutLeft != nil {
                setReceiveTimeout(connection, milliseconds: 0)
                receiveTimeoutLeft = nil
            }
        }
        while filled < limit {
            let buffered = stream.pointee.rdNext.map { start in stream.pointee.stop.map { $0 - start } ?? 0 } ?? 0
            // Only a refill that may read from the connection needs the deadline as its timeout.
            let refillReadsNothing = buffered <= 0 && refillNeedsNoRead(stream)
            if buffered <= 0 && !refillReadsNothing {
                guard let wait = deadline.remainingMilliseconds else { throw BodyDeadlinePassed(received: filled) }
                setReceiveTimeout(connection, milliseconds: wait)
                receiveTimeoutLeft = wait
            }
            let chunk = Int32(min(limit - filled, max(buffered, 1), 1 << 20))
            let readChunk = {
                out.withUnsafeMutableBufferPointer { p in
                    p.baseAddress!.advanced(by: filled).withMemoryRebound(to: CChar.self, capacity: Int(chunk)) {
                        FCGX_GetStr($0, chunk, stream)
                    }
                }
            }
            // A refill that would wait on the peer (a slow client behind the web server) lends
            // the worker's run permit; one whose bytes are there already does not.
            let n = buffered > 0 || refillReadsNothing || socketHasInput(connection) ? readChunk() : whileBlocked(readChunk)
            if n <= 0 {
                let error = FCGX_GetError(stream)
                if error == EAGAIN || error == EWOULDBLOCK || deadline.remainingMilliseconds == nil {
                    throw BodyDeadlinePassed(received: filled)
                }
                break
            }
            filled += Int(n)
        }
        out.removeSubrange(filled...)
        return out
    }

    /// SO_RCVTIMEO on the connection; 0 waits without limit.
    private static func setReceiveTimeout(_ fd: Int32, milliseconds: Int) {
        var limit = timeval(tv_sec: milliseconds / 1000, tv_usec: Int((milliseconds % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }
}
