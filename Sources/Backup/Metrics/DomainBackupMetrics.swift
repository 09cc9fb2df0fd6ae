/// What the metrics file says about one domain's backups, and how a run changes it.
public struct DomainBackupMetrics: Sendable, Equatable {
    /// The numbers known, by metric; a metric never measured (no success yet, say) is absent.
    public var values: [BackupMetric: Double]
    /// `full` or `incremental`: the last successful backup's level.
    public var level: String?

    /// Metrics with the given numbers and level.
    public init(values: [BackupMetric: Double] = [:], level: String? = nil) {
        self.values = values
        self.level = level
    }

    /// A successful run that ended at `time` (Unix seconds) and made `outcome`'s point, which holds `bytesWritten`
    /// bytes in the repository (nil when they could not be counted: the series is left out rather than kept stale).
    public mutating func recordSuccess(_ outcome: BackupOutcome, bytesWritten: UInt64?, at time: Double) {
        values[.lastRunTime] = time
        values[.lastSuccessTime] = time
        values[.lastDuration] = outcome.seconds
        values[.lastBytesRead] = Double(outcome.disks.reduce(UInt64(0)) { $0 + $1.bytesRead })
        values[.lastBytesWritten] = bytesWritten.map { Double($0) }
        values[.lastMissingDisks] = Double(outcome.missing.count)
        values[.failures] = values[.failures] ?? 0
        values[.consecutiveFailures] = 0
        level = outcome.level
    }

    /// A failed run that ended at `time`: only the run time and the failure counts change.
    public mutating func recordFailure(at time: Double) {
        values[.lastRunTime] = time
        values[.failures] = (values[.failures] ?? 0) + 1
        values[.consecutiveFailures] = (values[.consecutiveFailures] ?? 0) + 1
    }
}
