import NBD
import Synchronization

/// One of a source's connections, replaced by a new one when the server drops it.
///
/// Reads take the current connection without waiting; when requests on a dropped connection fail together, the
/// first to ask reconnects and the others wait for that same attempt rather than each opening a connection.
final class ConnectionSlot: Sendable {
    /// The connection and how many times it has been replaced.
    private let entry: Mutex<(connection: NBDConnection, generation: Int)>
    private let reconnection = Reconnection()

    init(_ connection: NBDConnection) {
        entry = Mutex((connection, 0))
    }

    var current: (connection: NBDConnection, generation: Int) { entry.withLock { $0 } }

    /// Replaces the connection of `generation` with one from `open`, unless another request has replaced it
    /// already. An error from `open` reaches every request that waited for this attempt.
    func reconnect(
        after generation: Int, _ open: @escaping @Sendable () async throws(CopyError) -> NBDConnection
    ) async throws(CopyError) {
        try await reconnection.run(slot: self, after: generation, open)
    }

    fileprivate func install(_ connection: NBDConnection) -> NBDConnection {
        entry.withLock { entry in
            defer { entry = (connection, entry.generation + 1) }
            return entry.connection
        }
    }
}

/// The one reconnect attempt of a slot at a time.
private actor Reconnection {
    private var attempt: (generation: Int, task: Task<Void, any Error>)?

    func run(
        slot: ConnectionSlot, after generation: Int,
        _ open: @escaping @Sendable () async throws(CopyError) -> NBDConnection
    ) async throws(CopyError) {
        guard slot.current.generation == generation else { return }
        let task: Task<Void, any Error>
        if let attempt, attempt.generation == generation {
            task = attempt.task
        } else {
            task = Task {
                let replaced = slot.install(try await open())
                await replaced.close()
            }
            attempt = (generation, task)
        }
        let result = await task.result
        if attempt?.generation == generation { attempt = nil }
        switch result {
        case .success: return
        case .failure(let error as CopyError): throw error
        case .failure(let error): throw CopyError(.source, "cannot reconnect: \(error)")
        }
    }
}
