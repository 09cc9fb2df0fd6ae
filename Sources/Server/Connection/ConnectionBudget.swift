/// The reply bytes one connection holds, from the moment a request is taken until its reply is written, within its
/// own budget and the server's ``ReplyBudget``, and the requests it has at work.
struct ConnectionBudget {
    /// The most requests of one connection at work at once, as qemu-nbd allows: the pool's threads are shared, and
    /// a client must not queue more work ahead of the others than this, whatever its replies cost.
    static let maximumRequestsAtWork = 16

    private let server: ReplyBudget
    private let limit: Int
    /// Reply bytes this connection holds, taken from `server` too: requests at work and replies not yet written.
    private(set) var held = 0
    /// Bytes `server` handed over after the request that waited for them.
    private var granted = 0
    /// The connection waits in the server's line.
    private(set) var waitingForServer = false
    /// Requests at work on the thread pool.
    private(set) var requestsAtWork = 0

    init(server: ReplyBudget, limits: ServerLimits) {
        self.server = server
        limit = limits.connectionBudget
    }

    /// Takes `bytes` for a reply; false when they do not fit yet: this connection's replies must be written (or its
    /// requests at work done) first, or the server hands them over later through `waiter`'s callback, and
    /// ``receive(_:)`` keeps them for the request that asked.
    mutating func take(_ bytes: Int, orWaitAs waiter: () -> ReplyBudget.Waiter) -> Bool {
        // One reply at least, however large, so that every request can be answered.
        guard held == 0 || held + bytes <= limit, requestsAtWork < Self.maximumRequestsAtWork else { return false }
        if granted > 0 {
            // Handed over for this very request, which waited.
            if granted > bytes { server.give(granted - bytes) } else { server.overdraw(bytes - granted) }
            granted = 0
        } else if !server.take(waiter()) {
            waitingForServer = true
            return false
        }
        held += bytes
        return true
    }

    /// The server handed over the `bytes` this connection waited for; they go back at once if it is closed.
    mutating func receive(_ bytes: Int, connectionOpen: Bool) {
        waitingForServer = false
        if connectionOpen { granted = bytes } else { server.give(bytes) }
    }

    /// Gives back `bytes` of this connection's replies.
    mutating func release(_ bytes: Int) {
        held -= bytes
        server.give(bytes)
    }

    /// A reply was built: the bytes held for it, `estimate`, become its real `size`.
    mutating func correct(estimate: Int, to size: Int) {
        if size > estimate {
            server.overdraw(size - estimate)
            held += size - estimate
        } else {
            release(estimate - size)
        }
    }

    mutating func startWork() { requestsAtWork += 1 }
    mutating func finishWork() { requestsAtWork -= 1 }

    /// The connection closed: bytes handed over for a request that will never run go back, and so do those still on
    /// their way to `id` (given back by the callback, which finds the connection gone).
    mutating func close(id: ObjectIdentifier) {
        if granted > 0 { server.give(granted) }
        granted = 0
        if waitingForServer, server.leave(id) { waitingForServer = false }
    }
}
