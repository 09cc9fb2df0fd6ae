import Synchronization

/// Races `work` against a deadline without waiting for the loser: a task group would wait for a libvirt call
/// blocked on its worker thread, which cancellation cannot interrupt. `work` keeps running in its own task after the
/// deadline has passed; its result is then dropped.
enum FirstResult {
    /// The value of `work`, or `fallback` when `work` has not finished within `limit`.
    static func of<T: Sendable>(
        _ work: @escaping @Sendable () async -> T, within limit: Duration, else fallback: T
    ) async -> T {
        await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            Task { once.resume(returning: await work()) }
            Task {
                try? await Task.sleep(for: limit)
                once.resume(returning: fallback)
            }
        }
    }
}

/// A continuation resumed by the first of several callers; the later ones are ignored.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, Never>?>

    init(_ continuation: CheckedContinuation<T, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(returning value: T) {
        continuation.withLock { $0.take() }?.resume(returning: value)
    }
}
