/// How one domain's backup run ended, as the metrics file records it.
public enum BackupRunResult: Sendable {
    /// The run made a point (a partial one too: its outcome lists the missing disks).
    case succeeded(BackupOutcome)
    /// The run failed, for whatever reason: no point was made.
    case failed(domain: String)

    /// The domain the run was for.
    public var domain: String {
        switch self {
        case .succeeded(let outcome): outcome.domain
        case .failed(let domain): domain
        }
    }
}
