import Logging

/// The `LogHandler` behind ``StderrLog``'s loggers.
struct StderrLogHandler: LogHandler {
    let label: String
    let log: StderrLog
    var logLevel: Logger.Level = .notice
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        log.write(
            StderrEvent(
                label: label, level: event.level, message: event.message.description,
                metadata: merged.mapValues { "\($0)" }, source: event.source))
    }
}
