import Engine
import Foundation

/// A one-line progress bar on stderr: bytes done of bytes to do, rate, time left, and the parts (disks) being
/// worked on. One bar serves every long command: `copy`, `backup`, `restore` and `verify`.
enum ProgressBar {
    /// Runs `work`, redrawing the bar from `snapshot` every quarter second while it runs when `showing` is true.
    static func `while`<Result: Sendable, Failure: Error>(
        showing: Bool, _ snapshot: @escaping @Sendable () -> ProgressSnapshot,
        _ work: () async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        guard showing else { return try await work() }
        let started = ContinuousClock.now
        let drawer = Task {
            while !Task.isCancelled {
                Terminal.writeError("\r" + line(snapshot(), since: started) + "\u{1B}[K")
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer {
            drawer.cancel()
            Terminal.writeError("\r" + line(snapshot(), since: started) + "\u{1B}[K\n")
        }
        return try await work()
    }

    /// Runs `work` with a bar over one copy's counters.
    static func `while`<Result: Sendable, Failure: Error>(
        showing: Bool, _ progress: CopyProgress, _ work: () async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        try await self.while(showing: showing, { progress.snapshot }, work)
    }

    /// Runs `work` with a bar over a whole job.
    static func `while`<Result: Sendable, Failure: Error>(
        showing: Bool, _ progress: JobProgress, _ work: () async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        try await self.while(showing: showing, { progress.snapshot }, work)
    }

    static func line(_ snapshot: ProgressSnapshot, since start: ContinuousClock.Instant) -> String {
        let done = snapshot.bytesDone
        let elapsed = max(0.001, (ContinuousClock.now - start).inSeconds)
        let rate = Double(done) / elapsed
        let parts = snapshot.running.isEmpty ? "" : "  " + Terminal.escaped(snapshot.running.joined(separator: ", "))
        if snapshot.isPreparing { return "preparing..." }
        guard let total = snapshot.bytesToDo else {
            return "mapping extents... \(ByteCount(done))" + parts
        }
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let remaining = rate > 0 ? Double(total - min(done, total)) / rate : 0
        return "[\(bar)] \(ByteCount(done)) / \(ByteCount(total)) \(String(format: "%3.0f%%", fraction * 100)) "
            + "\(ByteCount(UInt64(rate)))/s ETA \(clock(remaining))" + parts
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }
}
