import Synchronization

/// The reply bytes all connections of a server share. A connection takes bytes before it starts a request and gives
/// them back once the reply is written; when they are taken, it waits in line and is handed its bytes, first come
/// first served, as replies of others are written, so that no connection is passed over for ever.
final class ReplyBudget: Sendable {
    /// A connection waiting for bytes: `granted` is called once they are its own.
    struct Waiter: Sendable {
        let id: ObjectIdentifier
        let bytes: Int
        let granted: @Sendable (Int) -> Void
    }

    private struct State {
        var available: Int
        var waiting: [Waiter] = []
    }

    private let state: Mutex<State>

    init(bytes: Int) {
        state = Mutex(State(available: bytes))
    }

    /// Takes `waiter.bytes` at once and returns true, or puts the waiter in line (behind any already there, so
    /// that none is overtaken) and returns false.
    func take(_ waiter: Waiter) -> Bool {
        state.withLock { state in
            if state.waiting.isEmpty, state.available >= waiter.bytes {
                state.available -= waiter.bytes
                return true
            }
            state.waiting.append(waiter)
            return false
        }
    }

    /// Takes `bytes` whether or not they are there: a reply that came out larger than its estimate is already built.
    func overdraw(_ bytes: Int) {
        state.withLock { $0.available -= bytes }
    }

    /// Gives back `bytes`, and hands them on to the waiters first in line that they now cover.
    func give(_ bytes: Int) {
        let served = state.withLock { state in
            state.available += bytes
            var served: [Waiter] = []
            while let first = state.waiting.first, first.bytes <= state.available {
                state.available -= first.bytes
                served.append(state.waiting.removeFirst())
            }
            return served
        }
        // Outside the lock: a waiter's connection may give bytes back at once.
        for waiter in served { waiter.granted(waiter.bytes) }
    }

    /// Takes the waiter `id` out of line, if it is still waiting; false if it was handed its bytes already.
    func leave(_ id: ObjectIdentifier) -> Bool {
        state.withLock { state in
            guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return false }
            state.waiting.remove(at: index)
            return true
        }
    }
}
