/// When a connection with commands in flight has heard nothing from its server for too long.
///
/// Kept by the connection's thread: it restarts the watch whenever the server sends something, or when commands
/// start after none were waiting, and polls no longer than the time left.
struct StallWatch {
    /// How long commands may wait with no reply at all; nil waits forever.
    let timeout: Duration?
    private var since = ContinuousClock.now

    init(timeout: Duration?) {
        self.timeout = timeout
    }

    mutating func restart() {
        since = .now
    }

    /// The `poll` timeout in milliseconds: -1 (none) without a timeout or with nothing waiting.
    func pollTimeout(waiting: Bool) -> Int32 {
        guard let timeout, waiting else { return -1 }
        let left = since + timeout - .now
        guard left > .zero else { return 0 }
        let (seconds, attoseconds) = left.components
        // Rounded up, so that a wake-up never comes just before the deadline; a day at most.
        return Int32(min(seconds, 86_400) * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// Whether commands have waited longer than the timeout.
    var hasExpired: Bool {
        guard let timeout else { return false }
        return ContinuousClock.now - since >= timeout
    }
}
