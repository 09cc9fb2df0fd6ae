import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Owns one libnbd handle and the thread that drives it.
///
/// Every libnbd call on the handle, the blocking connect included, runs on that thread: commands are queued
/// from any thread or task, the thread starts them and polls the socket, and libnbd's callbacks complete
/// them there. Swift tasks wait on continuations and never block on libnbd.
final class HandleLoop: Sendable {
    enum Request: Sendable {
        case read(buffer: ReadBuffer, offset: UInt64, completion: @Sendable (NBDError?) -> Void)
        case blockStatus(
            offset: UInt64, length: UInt64, completion: @Sendable (Result<BlockStatusReply, NBDError>) -> Void)
    }

    /// A buffer a read fills. The caller keeps it alive until the read completes.
    struct ReadBuffer: @unchecked Sendable {  // the caller owns the memory and awaits the read's completion
        let pointer: UnsafeMutableRawBufferPointer
    }

    private struct State {
        var queue: [Request] = []
        var closing = false
        /// Set when a waiting task was cancelled: the thread drops the connection at once.
        var aborting = false
        /// Why the connection ended; once set, new requests fail at once with it.
        var ended: NBDError?
        var onExit: [CheckedContinuation<Void, Never>] = []
        var exited = false
    }

    private let handle: HandlePointer
    /// A non-blocking pipe that wakes the thread from poll when requests arrive: (read end, write end).
    private let wakePipe: (read: Int32, write: Int32)
    private let state = Mutex(State())
    /// How long commands in flight may go without any reply before the connection is closed as stalled.
    private let stallTimeout: Duration?
    /// Why the thread closed the connection, for the commands it drops.
    private let end = ConnectionEnd()

    private init(handle: HandlePointer, wakePipe: (read: Int32, write: Int32), stallTimeout: Duration?) {
        self.handle = handle
        self.wakePipe = wakePipe
        self.stallTimeout = stallTimeout
    }

    /// Creates a handle, connects it on a new thread, and returns once the handshake is done.
    static func connect(
        uri: String, metaContexts: [String], stallTimeout: Duration?
    ) async throws(NBDError) -> (HandleLoop, ExportInfo) {
        let handle = try LibNBD.create()
        do {
            try LibNBD.configure(handle, metaContexts: metaContexts)
        } catch {
            LibNBD.close(handle)
            throw error
        }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0,
            fds.allSatisfy({ fcntl($0, F_SETFL, O_NONBLOCK) == 0 && fcntl($0, F_SETFD, FD_CLOEXEC) == 0 })
        else {
            LibNBD.close(handle)
            throw NBDError(.connect, "cannot create a pipe: \(String(cString: strerror(errno)))", errno: errno)
        }
        let loop = HandleLoop(handle: handle, wakePipe: (fds[0], fds[1]), stallTimeout: stallTimeout)
        let result: Result<ExportInfo, NBDError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                let connected = Result { () throws(NBDError) in
                    try UnixSocketPeerCheck(uri: uri)?.verify(timeout: stallTimeout)
                    try loop.handshake(uri: uri)
                    return try LibNBD.exportInfo(handle, metaContexts: metaContexts)
                }
                continuation.resume(returning: connected)
                loop.run(connected: (try? connected.get()) != nil)
            }
            thread.name = "nbd-handle"
            thread.start()
        }
        switch result {
        case .success(let info): return (loop, info)
        case .failure(let error):
            await loop.close()
            throw error
        }
    }

    // MARK: Submitting

    func submit(_ request: Request) {
        let refused: NBDError? = state.withLock { state in
            if let ended = state.ended { return ended }
            if state.closing { return NBDError(.disconnected, "the NBD connection is closed") }
            state.queue.append(request)
            return nil
        }
        if let refused {
            Self.fail(request, refused)
        } else {
            wake()
        }
    }

    /// Finishes the commands in flight, disconnects, and returns when the thread has closed the handle.
    func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = state.withLock { state in
                state.closing = true
                if !state.exited { state.onExit.append(continuation) }
                return state.exited
            }
            if exited { continuation.resume() } else { wake() }
        }
    }

    /// Drops the connection at once, failing every command in flight: NBD cannot cancel one command, and
    /// a cancelled copy must not wait for reads it no longer needs. libnbd calls every command's `free`
    /// callback when the handle is closed, so each waiting task resumes, and no buffer is touched after.
    func abort() {
        state.withLock { $0.aborting = true }
        wake()
    }

    /// Whether commands can still be sent: the connection neither ended nor is closing.
    var isOpen: Bool {
        state.withLock { $0.ended == nil && !$0.closing && !$0.aborting }
    }

    /// Asks the thread to close the handle without waiting for it.
    func requestClose() {
        state.withLock { $0.closing = true }
        wake()
    }

    /// Under the state lock, and never once the thread has exited: the thread closes the pipe after it marks
    /// itself exited, and a write after that would raise SIGPIPE (read end closed) or, worse, land in whatever
    /// file reused the descriptor number.
    private func wake() {
        let pipe = wakePipe.write
        state.withLock { state in
            guard !state.exited else { return }
            var byte: UInt8 = 1
            _ = write(pipe, &byte, 1)  // when the pipe is full, the thread is awake already
        }
    }

    private static func fail(_ request: Request, _ error: NBDError) {
        switch request {
        case .read(_, _, let completion): completion(error)
        case .blockStatus(_, _, let completion): completion(.failure(error))
        }
    }

    // MARK: The loop thread

    private func run(connected: Bool) {
        var ended: NBDError? = connected ? nil : NBDError(.disconnected, "the NBD connection was never established")
        var watch = StallWatch(timeout: stallTimeout)
        while ended == nil {
            let (requests, closing, aborting) = state.withLock { state in
                defer { state.queue.removeAll(keepingCapacity: true) }
                return (state.queue, state.closing, state.aborting)
            }
            if aborting {
                ended = NBDError(.cancelled, "the NBD connection was closed because the copy was cancelled")
                end.set(ended!)
                for request in requests { Self.fail(request, ended!) }
                break
            }
            if LibNBD.isDead(handle) {
                ended = NBDError(.disconnected, "the connection to the NBD server was lost")
                for request in requests { Self.fail(request, ended!) }
                break
            }
            if LibNBD.inFlight(handle) == 0 { watch.restart() }  // the wait starts with the first command
            for request in requests { start(request) }
            if closing && LibNBD.inFlight(handle) == 0 { break }
            do {
                if try pollOnce(timeout: watch.pollTimeout(waiting: LibNBD.inFlight(handle) > 0)) { watch.restart() }
            } catch {
                ended = error
            }
            if ended == nil, LibNBD.inFlight(handle) > 0, watch.hasExpired, let timeout = watch.timeout {
                ended = NBDError(
                    .stalled, "no reply from the NBD server for \(timeout.components.seconds) s with commands waiting")
                end.set(ended!)
            }
        }
        let finalError = ended ?? NBDError(.disconnected, "the NBD connection is closed")
        let (leftover, waiters) = state.withLock { state in
            state.ended = finalError
            state.exited = true
            defer {
                state.queue = []
                state.onExit = []
            }
            return (state.queue, state.onExit)
        }
        for request in leftover { Self.fail(request, finalError) }
        if ended == nil { LibNBD.shutdown(handle) }
        LibNBD.close(handle)  // runs the free callbacks of anything still in flight
        // `exited` is set, so no `wake()` writes to the pipe any more.
        Glibc.close(wakePipe.read)
        Glibc.close(wakePipe.write)
        for waiter in waiters { waiter.resume() }
    }

    private func start(_ request: Request) {
        let command: CommandState
        let starter: (UnsafeMutableRawPointer) throws(NBDError) -> Void
        switch request {
        case .read(let buffer, let offset, let completion):
            command = ReadCommand(offset: offset, count: buffer.pointer.count, completion: completion)
            starter = { [handle] context throws(NBDError) in
                try LibNBD.startRead(handle, into: buffer.pointer, offset: offset, context: context)
            }
        case .blockStatus(let offset, let length, let completion):
            command = BlockStatusCommand(offset: offset, length: length, completion: completion)
            starter = { [handle] context throws(NBDError) in
                try LibNBD.startBlockStatus(handle, offset: offset, length: length, context: context)
            }
        }
        command.end = end
        let retained = Unmanaged.passRetained(command)
        if command is BlockStatusCommand { _ = retained.retain() }  // one reference per callback's free
        command.isStarting = true
        do {
            try starter(retained.toOpaque())
            command.isStarting = false
        } catch {
            command.isStarting = false
            // A command refused because the connection died in the meantime failed for that reason.
            command.finish(LibNBD.isDead(handle) ? NBDError(.disconnected, error.message, errno: error.errno) : error)
        }
    }

    /// Connects and negotiates on this thread, polling as for commands, so that a server that accepts the
    /// connection but never answers fails after the stall timeout instead of holding the caller forever.
    private func handshake(uri: String) throws(NBDError) {
        try LibNBD.startConnect(handle, uri: uri)
        let failing = (NBDError.Code.connect, "cannot connect to \(uri)")
        var watch = StallWatch(timeout: stallTimeout)
        while !LibNBD.isReady(handle) {
            guard !LibNBD.isDead(handle) else {
                throw NBDError(
                    .connect, "cannot connect to \(uri): the server ended the connection during the handshake")
            }
            if try pollOnce(timeout: watch.pollTimeout(waiting: true), failing: failing) { watch.restart() }
            if watch.hasExpired, let timeout = watch.timeout {
                throw NBDError(
                    .stalled,
                    "no answer from the NBD server at \(uri) for \(timeout.components.seconds) s during the handshake")
            }
        }
    }

    /// Waits up to `timeout` milliseconds (-1: no limit) for the socket or the wake pipe, then lets libnbd read or
    /// write; true when the server sent something.
    private func pollOnce(
        timeout: Int32, failing: (NBDError.Code, String) = (.disconnected, "NBD connection failed")
    ) throws(NBDError) -> Bool {
        let direction = LibNBD.direction(handle)
        var events: Int16 = 0
        if direction.contains(.read) { events |= Int16(POLLIN) }
        if direction.contains(.write) { events |= Int16(POLLOUT) }
        var fds = [
            pollfd(fd: LibNBD.socket(handle), events: events, revents: 0),
            pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&fds, 2, timeout)
        if ready < 0 {
            if errno == EINTR { return false }
            throw NBDError(.disconnected, "poll failed: \(String(cString: strerror(errno)))", errno: errno)
        }
        if fds[1].revents != 0 {
            var drain = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            _ = withUnsafeMutableBytes(of: &drain) { read(wakePipe.read, $0.baseAddress, $0.count) }
        }
        let revents = fds[0].revents
        if revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            try LibNBD.notifyRead(handle, failing: failing)
            return true
        } else if revents & Int16(POLLOUT) != 0 {
            try LibNBD.notifyWrite(handle, failing: failing)
        }
        return false
    }
}
