import Foundation
import Logging
import Synchronization

/// Where a command's log events go: stderr, as plain lines or as JSON objects.
///
/// Plain lines are the notes people read (a skipped disk, why this level): written at once on a terminal, and
/// otherwise kept until the command succeeds, so that a failed run's stderr is its one error line. JSON events are
/// written as they happen, for a log pipeline, and the failure is one more event.
final class StderrLog: Sendable {
    private let options: LoggingOptions
    private let immediate: Bool
    /// Clears the terminal's line before a note, which a progress bar may be drawn on.
    private let clearLine: String
    private let kept = Mutex<[String]>([])

    init(_ options: LoggingOptions, onTerminal: Bool = Terminal.isTerminal(.standardError)) {
        self.options = options
        self.immediate = options.logJSON || onTerminal
        self.clearLine = onTerminal ? "\r\u{1B}[K" : ""
    }

    /// A logger writing here, at the level the options ask for.
    func logger(label: String) -> Logger {
        var logger = Logger(label: label) { label in StderrLogHandler(label: label, log: self) }
        logger.logLevel = options.level
        return logger
    }

    /// Writes the notes kept so far; a command calls it once it has succeeded.
    func flush() {
        let notes = kept.withLock { notes in
            defer { notes = [] }
            return notes
        }
        for note in notes { Terminal.writeError(note) }
    }

    /// Writes the command's failure: the one error line, or an error event.
    func fail(_ message: String) {
        if options.logJSON {
            write(StderrEvent(label: "pullback", level: .error, message: message, metadata: [:], source: "pullback"))
        } else {
            Terminal.printError(message)
        }
    }

    func write(_ event: StderrEvent) {
        let line: String
        if options.logJSON {
            guard let json = try? JSONOutput.line(event) else { return }
            line = json + "\n"
        } else {
            // Notes quote names from the repository and from libvirt (point ids, checkpoints, disks): escaped.
            line = Terminal.escaped(event.message) + "\n"
        }
        if immediate { Terminal.writeError(clearLine + line) } else { kept.withLock { $0.append(line) } }
    }
}

/// One event as `--log-json` writes it.
struct StderrEvent: Encodable {
    var time = Date()
    var label: String
    var level: Logger.Level
    var message: String
    var metadata: [String: String]
    var source: String

    private enum CodingKeys: String, CodingKey {
        case time, label, level, message, metadata, source
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(time), forKey: .time)
        try container.encode(label, forKey: .label)
        try container.encode(level.rawValue, forKey: .level)
        try container.encode(message, forKey: .message)
        if !metadata.isEmpty { try container.encode(metadata, forKey: .metadata) }
        try container.encode(source, forKey: .source)
    }
}
