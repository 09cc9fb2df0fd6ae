import Engine
import Foundation

/// A one-line progress bar on stderr: bytes done of bytes to do, rate, time left, and the parts (disks) being
/// worked on; or, while no bytes move, the step the job is at. One bar serves every long command: `copy`, `backup`,
/// `restore` and `verify`.
///
/// Each frame is cut to the terminal's width, asked anew at each frame so that a resized window is followed, and one
/// column short of it, so that the line never wraps: a wrapped frame would leave its first half behind. When the work
/// ends the line is cleared.
enum ProgressBar {
    /// Runs `work`, redrawing the bar from `snapshot` every quarter second while it runs when `showing` is true.
    static func `while`<Result: Sendable, Failure: Error>(
        showing: Bool, _ snapshot: @escaping @Sendable () -> ProgressSnapshot,
        _ work: () async throws(Failure) -> Result
    ) async throws(Failure) -> Result {
        guard showing else { return try await work() }
        let started = ContinuousClock.now
        let frame = { @Sendable (final: Bool) -> String in
            let elapsed = (ContinuousClock.now - started).inSeconds
            let width = Terminal.columns(of: .standardError)
            return "\r" + line(snapshot(), elapsed: elapsed, width: width, final: final) + "\u{1B}[K"
        }
        let drawer = Task {
            while !Task.isCancelled {
                Terminal.writeError(frame(false))
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        let outcome: Swift.Result<Result, Failure>
        do throws(Failure) {
            outcome = .success(try await work())
        } catch {
            outcome = .failure(error)
        }
        // The drawer is waited for, so that no frame of it lands after the line is cleared.
        drawer.cancel()
        await drawer.value
        // A job that succeeded draws its end (100 %) for whoever records the terminal, and every job clears the line:
        // what follows (the summary, an error) starts on a clean line with no bar left behind.
        let end = if case .success = outcome { frame(true) } else { "" }
        Terminal.writeError(end + "\r\u{1B}[K")
        return try outcome.get()
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

    /// The narrowest bar drawn; below it the bar is left out rather than shown too short to read.
    static let narrowestBar = 10
    /// The widest bar drawn; the rest of a wide terminal goes to the parts' names.
    static let widestBar = 30

    /// One frame for a terminal `width` columns wide, at most `width - 1` columns (a line that fills the last column
    /// wraps on some terminals). `final` draws the bar whatever step the job is at: the job is done.
    static func line(_ snapshot: ProgressSnapshot, elapsed: Double, width: Int, final: Bool = false) -> String {
        let room = max(1, width - 1)
        let parts = snapshot.running.map(Terminal.escaped)
        let done = snapshot.bytesDone
        if !final, let phase = snapshot.phase { return fitted(text(of: phase), parts, in: room) }
        guard let total = snapshot.bytesToDo ?? (final ? done : nil) else {
            return fitted("mapping extents... \(ByteCount(done))", parts, in: room)
        }
        if total == 0 && !final { return fitted("nothing to copy", parts, in: room) }
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let rate = Double(done) / max(0.001, elapsed)
        let remaining = rate > 0 ? Double(total - min(done, total)) / rate : 0
        let percent = String(format: "%3.0f%%", fraction * 100)
        let amounts = "\(ByteCount(done)) / \(ByteCount(total)) \(percent)"
        let rateAndTime = " \(ByteCount(UInt64(rate)))/s ETA \(clock(remaining))"
        // The most that fits: every figure, then the amounts, then the percentage alone. Each is measured at its
        // widest (as the total, a four-digit rate), so that the bar keeps its width while the figures change.
        let widestAmounts = "\(ByteCount(total)) / \(ByteCount(total)) 100%"
        let choices = [
            (amounts + rateAndTime, widestAmounts + " 1023.9 MiB/s ETA 0:00:00"), (amounts, widestAmounts),
            (percent, "100%"),
        ]
        let listed = parts.isEmpty ? 0 : DisplayWidth.columns(of: parts.joined(separator: ", ")) + 2
        for (figures, widest) in choices {
            // "[" bar "] " figures: the bar takes what the whole list of parts leaves, within its bounds.
            let left = room - max(DisplayWidth.columns(of: figures), DisplayWidth.columns(of: widest)) - 3
            guard left >= narrowestBar else { continue }
            let width = min(widestBar, max(narrowestBar, left - listed))
            let filled = Int(fraction * Double(width))
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] "
            return appending(parts, to: bar + figures, in: room)
        }
        return fitted(percent, parts, in: room)
    }

    /// `text` cut to `room` columns, followed by as many of `parts` as fit.
    static func fitted(_ text: String, _ parts: [String], in room: Int) -> String {
        appending(parts, to: DisplayWidth.truncated(text, to: room), in: room)
    }

    /// `line` (which fits `room`) followed by two spaces and as many of `parts` as fit in `room`.
    static func appending(_ parts: [String], to line: String, in room: Int) -> String {
        let left = room - DisplayWidth.columns(of: line) - 2
        guard !parts.isEmpty, left > 0 else { return line }
        let list = DisplayWidth.list(parts, in: left)
        return list.isEmpty ? line : line + "  " + list
    }

    /// What the bar says while the job is at `phase`.
    static func text(of phase: JobPhase) -> String {
        switch phase {
        case .preparing: "preparing..."
        case .startingDomain: "starting the shut-off domain paused..."
        case .startingJob: "starting the backup job..."
        case .endingJob: "ending the backup job..."
        case .checkingDigests: "checking digests..."
        case .committing: "committing the point..."
        case .stoppingDomain: "shutting the domain off again..."
        }
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }
}
