import Foundation
import Synchronization

/// Keeps the bytes read by every copy of a run under a rate: a token bucket shared by all their connections and
/// disks, which a read asks before it is issued.
///
/// The bucket starts empty when the first read asks, so that bytes read over any stretch from then on stay under
/// `bytesPerSecond` times its length plus one second's worth (a burst after an idle second), or one request when a
/// request is larger. Each read reserves its bytes in turn and then waits for its share of the debt, so waits queue
/// up in the order reads asked, whatever the number of connections.
public final class ByteRateLimiter: Sendable {
    /// The bytes per second allowed on average.
    public let bytesPerSecond: UInt
    private let bucket = Mutex(Bucket())
    private let clock = ContinuousClock()

    private struct Bucket {
        /// Bytes that may be read now; negative when reads already let through are ahead of the rate.
        var available: Double = 0
        /// When `available` was last brought up to date; nil until the first read asks.
        var updated: ContinuousClock.Instant?
    }

    /// A limiter allowing `bytesPerSecond` (at least 1) on average.
    public init(bytesPerSecond: UInt) {
        self.bytesPerSecond = max(1, bytesPerSecond)
    }

    /// Waits until `length` bytes may be read, sleeping the task (never blocking its thread), then counts them as
    /// read. Throws `CancellationError` when the task is cancelled while it waits.
    public func acquire(_ length: UInt64) async throws {
        let wait = reserve(length)
        if wait > .zero { try await Task.sleep(for: wait) }
    }

    /// Counts `length` bytes just read by blocking work and blocks its thread until the rate allows them. Only for
    /// work already on NIO's I/O thread pool (``BlockingWork``), which reads synchronously between its waits; never
    /// call it from a task.
    public func waitBlocking(_ length: UInt64) {
        let wait = reserve(length)
        if wait > .zero { Thread.sleep(forTimeInterval: wait.inSeconds) }
    }

    /// Takes `length` bytes from the bucket, and says how long the caller must wait for the debt this leaves.
    private func reserve(_ length: UInt64) -> Duration {
        let rate = Double(bytesPerSecond)
        let now = clock.now
        let debt = bucket.withLock { bucket in
            if let updated = bucket.updated {
                // At most one second's worth gathers while nobody reads.
                bucket.available = min(rate, bucket.available + (now - updated).inSeconds * rate)
            }
            bucket.updated = now
            bucket.available -= Double(length)
            return -bucket.available
        }
        guard debt > 0 else { return .zero }
        return .nanoseconds(Int64((debt / rate * 1e9).rounded(.up)))
    }
}
