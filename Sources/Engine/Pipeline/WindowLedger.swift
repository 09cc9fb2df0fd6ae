/// The requests still running in each window of a copy, so that the target learns, in order, when a window is
/// complete (``BlockTarget/settled(below:)``), and the pipeline how many requests are in flight.
struct WindowLedger {
    private var running: [Int] = []
    private var ends: [UInt64] = []
    /// Windows reported complete so far; they are always the first ones.
    private(set) var settledCount = 0
    /// Requests running over all windows.
    private(set) var inFlight = 0

    /// Windows opened so far.
    var count: Int { running.count }

    /// Opens the next window, which ends at `end`; returns its index.
    mutating func open(endingAt end: UInt64) -> Int {
        running.append(0)
        ends.append(end)
        return running.count - 1
    }

    mutating func started(in window: Int) {
        running[window] += 1
        inFlight += 1
    }

    mutating func finished(in window: Int) {
        running[window] -= 1
        inFlight -= 1
    }

    /// The ends of the windows below index `limit` that became complete since the last call, in order.
    mutating func newlySettled(below limit: Int) -> [UInt64] {
        var settled: [UInt64] = []
        while settledCount < limit && running[settledCount] == 0 {
            settled.append(ends[settledCount])
            settledCount += 1
        }
        return settled
    }
}
