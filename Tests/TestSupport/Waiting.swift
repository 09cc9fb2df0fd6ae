/// Polls `condition` every `interval` until it holds (true) or `timeout` has passed (false). A cancelled task
/// (`.timeLimit`) stops waiting at once with `CancellationError`.
@discardableResult
package func waitUntil(
    timeout: Duration,
    every interval: Duration = .milliseconds(20),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while true {
        if try await condition() { return true }
        if clock.now >= deadline { return false }
        try await Task.sleep(for: interval)
    }
}

/// Runs `body` in a task of its own that the caller's cancellation does not reach: teardown after a test was
/// cancelled by `.timeLimit` must still run its commands to the end instead of having them killed at once.
package func withoutCancellation<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
    await Task { await body() }.value
}
