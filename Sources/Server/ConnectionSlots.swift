import Synchronization

/// The connections a server serves at once, up to its limit.
final class ConnectionSlots: Sendable {
    private let limit: Int
    private let taken = Atomic(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a slot for a new connection; false when all are taken.
    func take() -> Bool {
        let (_, now) = taken.add(1, ordering: .relaxed)
        guard now > limit else { return true }
        taken.subtract(1, ordering: .relaxed)
        return false
    }

    /// Gives back the slot of a connection that has closed.
    func give() {
        taken.subtract(1, ordering: .relaxed)
    }
}
