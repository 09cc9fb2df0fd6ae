import Engine
import Foundation

/// A one-line progress bar on stderr: bytes done of bytes to copy, rate, and time left.
enum ProgressBar {
    /// Runs `work`, redrawing the bar every quarter second while it runs when `showing` is true.
    static func `while`<Result: Sendable>(
        showing: Bool, _ progress: CopyProgress, _ work: () async throws(CopyError) -> Result
    ) async throws(CopyError) -> Result {
        guard showing else { return try await work() }
        let started = ContinuousClock.now
        let drawer = Task {
            while !Task.isCancelled {
                Terminal.writeError("\r" + line(progress, since: started) + "\u{1B}[K")
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer {
            drawer.cancel()
            Terminal.writeError("\r" + line(progress, since: started) + "\u{1B}[K\n")
        }
        return try await work()
    }

    static func line(_ progress: CopyProgress, since start: ContinuousClock.Instant) -> String {
        let done = progress.bytesRead
        let elapsed = max(0.001, (ContinuousClock.now - start).inSeconds)
        let rate = Double(done) / elapsed
        guard let total = progress.bytesToCopy else {
            return "mapping extents... \(ByteCount(done))"
        }
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let remaining = rate > 0 ? Double(total - min(done, total)) / rate : 0
        return "[\(bar)] \(ByteCount(done)) / \(ByteCount(total)) \(String(format: "%3.0f%%", fraction * 100)) "
            + "\(ByteCount(UInt64(rate)))/s ETA \(clock(remaining))"
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }

}
