import Engine
import Repository

/// What `pullback sync` is asked: which repository's committed points go to which, for which domains, and which
/// points.
public struct SyncRequest: Sendable {
    /// Which points of each domain are copied.
    public enum Scope: String, Sendable, Codable {
        /// The newest point, and the part of its chain the target lacks.
        case latest
        /// Every point the target lacks.
        case all
    }

    /// The repository the points are read from; never written.
    public var source: BackupRepository
    /// The repository the points are copied into.
    public var target: BackupRepository
    /// The domains whose points are copied; empty for every domain of the source.
    public var domains: [String]
    /// Which points.
    public var scope: Scope
    /// Whether to make the target a repository first when nothing or an empty folder is there (`--init`, as
    /// `pullback backup --init`); without it the target must be a repository already.
    public var createsTarget: Bool
    /// The key file the target is encrypted with (`--to-key-file`): a target made by ``createsTarget`` is made
    /// encrypted under it, and a plain target is refused, so that points meant to be sealed are never copied in the
    /// clear. Nil: the target is taken as it is.
    public var targetKeyFile: String?
    /// The rate limit that reads of the source's objects wait for (`--limit-rate`); nil reads as fast as it can.
    public var rateLimiter: ByteRateLimiter?

    /// Copies `scope` points of `domains` (every domain of the source when empty) from `source` into `target`,
    /// made first with `createsTarget` (encrypted under `targetKeyFile` when given).
    public init(
        source: BackupRepository, target: BackupRepository, domains: [String] = [], scope: Scope = .all,
        createsTarget: Bool = false, targetKeyFile: String? = nil
    ) {
        self.source = source
        self.target = target
        self.domains = domains
        self.scope = scope
        self.createsTarget = createsTarget
        self.targetKeyFile = targetKeyFile
    }
}
