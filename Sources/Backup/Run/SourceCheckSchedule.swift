import Repository

/// When `backup --check-source-every N` reads the disks in full: at a domain's first backup, and then whenever none of
/// its N-1 newest points was checked. Counted from the points themselves, so that a pruned repository or a failed run
/// does not shift the schedule.
enum SourceCheckSchedule {
    /// Whether the backup after `points` (oldest first) checks its source, for an `interval` of N (1: always; nil:
    /// never).
    static func isDue(every interval: Int?, after points: [BackupPoint]) -> Bool {
        guard let interval, interval > 0 else { return false }
        return !points.suffix(interval - 1).contains { $0.manifest.sourceChecked == true }
    }
}
