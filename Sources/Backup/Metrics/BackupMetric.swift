/// One number the metrics file keeps per domain, named `pullback_backup_...` with a `domain` label.
///
/// The `last_` numbers but `last_run_timestamp_seconds` describe the last successful backup: a failed run leaves them
/// as they were, so that a dashboard still shows what the newest point holds. The level is not here: it is the one
/// family with a second label (``BackupMetricsExposition/levelName``).
public enum BackupMetric: String, CaseIterable, Sendable {
    /// When the last run ended, whether it succeeded or not, in Unix seconds: a timer that stopped firing shows here.
    case lastRunTime = "pullback_backup_last_run_timestamp_seconds"
    /// When the last successful backup ended, in Unix seconds.
    case lastSuccessTime = "pullback_backup_last_success_timestamp_seconds"
    /// How long the last successful backup took, in seconds (as `seconds` of `backup --json`).
    case lastDuration = "pullback_backup_last_duration_seconds"
    /// Bytes the last successful backup read from the domain's disks (the sum of `bytes_read` of `backup --json`).
    case lastBytesRead = "pullback_backup_last_read_bytes"
    /// Bytes the last successful backup's point holds in the repository: its images, block hashes, domain XML and
    /// manifest, as stored (compressed or sealed).
    case lastBytesWritten = "pullback_backup_last_written_bytes"
    /// Disks of the domain that the last successful backup's point lacks without being left out on purpose (the
    /// backup exited 3).
    case lastMissingDisks = "pullback_backup_last_missing_disks"
    /// Failed runs of the domain since the file was made: a counter, carried over from the file's earlier value.
    case failures = "pullback_backup_failures_total"
    /// Failed runs of the domain since its last successful backup: 0 after a success.
    case consecutiveFailures = "pullback_backup_consecutive_failures"

    /// The `# HELP` text.
    public var help: String {
        switch self {
        case .lastRunTime: "When the last backup run of the domain ended, successful or not (Unix time)."
        case .lastSuccessTime: "When the last successful backup of the domain ended (Unix time)."
        case .lastDuration: "How long the last successful backup of the domain took."
        case .lastBytesRead: "Bytes the last successful backup read from the domain's disks."
        case .lastBytesWritten: "Bytes the last successful backup's point holds in the repository."
        case .lastMissingDisks: "Disks the last successful backup's point lacks that were not left out on purpose."
        case .failures: "Failed backup runs of the domain."
        case .consecutiveFailures: "Failed backup runs of the domain since its last successful backup."
        }
    }

    /// Whether the number only grows (a Prometheus counter) rather than being set (a gauge).
    public var isCounter: Bool { self == .failures }
}
