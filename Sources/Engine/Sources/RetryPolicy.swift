#if canImport(Glibc)
    import Glibc
#endif

/// How a source retries a request that failed for a reason that may pass: how many times, and how long it waits
/// before each try (exponential backoff with jitter, so that the connections of a copy do not retry in step).
public struct RetryPolicy: Sendable {
    /// Retries per request after its first failure; 0 fails at once.
    public var retries: Int
    /// The wait before the first retry; it doubles before each next one, up to `maximumDelay`.
    public var firstDelay: Duration
    public var maximumDelay: Duration

    /// The default: 5 retries waiting 0.25, 0.5, 1, 2 and 4 s, each between half and all of that, about 4-8 s in
    /// all: long enough for a server to restart, short enough that a broken one fails a copy soon.
    public static let defaultRetries = 5

    public init(
        retries: Int = defaultRetries, firstDelay: Duration = .milliseconds(250), maximumDelay: Duration = .seconds(8)
    ) {
        self.retries = retries
        self.firstDelay = firstDelay
        self.maximumDelay = maximumDelay
    }

    /// The wait before retry number `attempt` (from 1): between half and all of `firstDelay × 2^(attempt-1)`,
    /// capped at `maximumDelay`.
    public func delay(beforeRetry attempt: Int) -> Duration {
        let doubled = firstDelay * (1 << min(max(attempt - 1, 0), 20))
        let full = min(doubled, maximumDelay)
        return full / 2 + full / 2 * Double.random(in: 0...1)
    }

    /// Errors worth another try: the server or its storage failed this once (EIO, EAGAIN, EINTR), or the connection
    /// went away (the caller reconnects). Others (EPERM, EINVAL for a range the export no longer has, ENOSPC,
    /// ENOTSUP) cannot get better by trying again.
    public static func isTransient(errno: Int32) -> Bool {
        transientErrors.contains(errno)
    }

    private static let transientErrors: Set<Int32> = [
        EIO, EAGAIN, EINTR, ENOTCONN, ECONNRESET, ECONNREFUSED, EPIPE, ESHUTDOWN, ETIMEDOUT,
    ]
}
