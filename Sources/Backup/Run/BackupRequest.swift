import Engine
import QCOW2

/// What to back up, where, and how: the request behind `pullback backup`.
public struct BackupRequest: Sendable {
    /// The libvirt domain's name.
    public var domain: String
    /// The repository's root folder.
    public var repository: String
    public var level: BackupLevel
    /// Back up only these disk targets (empty: every eligible disk).
    public var disks: [String]
    /// Leave these disk targets out.
    public var excluded: [String]
    /// Whether raw-format disks are skipped or copied in full at every point; nil leaves them out as missing disks
    /// (``BackupOutcome/missing``), which makes a partial point.
    public var rawDisks: RawDiskPolicy?
    /// The libvirt URI; nil uses `LIBVIRT_DEFAULT_URI`, else `qemu:///system`.
    public var connectURI: String?
    /// Where QEMU keeps its scratch images during the backup; nil uses the backup's private socket folder.
    public var scratchDirectory: String?
    /// NBD connections per disk when the export allows several.
    public var connections: Int
    /// How reads and block status requests that fail for a passing reason are tried again.
    public var retry = RetryPolicy()
    /// How a domain on another host (a remote libvirt URI) exports its disks: over TCP, with TLS unless insecure.
    public var remoteExport = RemoteExport()
    /// How long requests in flight may go without any reply before the backup fails; nil waits forever.
    public var stallTimeout: Duration? = .seconds(120)
    /// Under `--level auto`, the most points a chain holds (its full included) before a backup starts a new one with a
    /// full; from 1 to ``PointChain/maximumDepth``.
    public var maximumChain = BackupRequest.defaultMaximumChain
    /// How often a backup reads each disk in full and proves the point equal to it, repairing what a wrong dirty
    /// bitmap missed (``SourceCheckSchedule``): 1 at every backup, N at every Nth of the domain; nil never.
    public var sourceCheckInterval: Int?
    /// Counts the bytes copied, one part per disk, for a progress bar; nil counts nothing. Each disk is mapped
    /// before it is copied when it is given, so that the whole job's total is known early.
    public var progress: JobProgress?
    /// How the point's images store their clusters (`--compress`); nil keeps what the domain's newest point does
    /// (none for its first).
    public var compression: ClusterCompression?
    /// The rate limit that every read of the disks waits for (`--limit-rate`), shared by all the domains of a run;
    /// nil reads as fast as it can.
    public var rateLimiter: ByteRateLimiter?

    /// The default of ``maximumChain``: a full every 100 points (about three months of daily backups). Reading stays
    /// cheap far deeper (a restore of the newest of 1,000 small points reads in a few times a full's time); the bound
    /// is for what a damaged image spoils, every later point of its chain, and for prune's merges.
    public static let defaultMaximumChain = 100

    public init(
        domain: String, repository: String, level: BackupLevel = .auto, disks: [String] = [], excluded: [String] = [],
        rawDisks: RawDiskPolicy? = nil, connectURI: String? = nil, scratchDirectory: String? = nil,
        connections: Int = 4, progress: JobProgress? = nil
    ) {
        self.domain = domain
        self.repository = repository
        self.level = level
        self.disks = disks
        self.excluded = excluded
        self.rawDisks = rawDisks
        self.connectURI = connectURI
        self.scratchDirectory = scratchDirectory
        self.connections = connections
        self.progress = progress
    }
}

/// What a finished backup did.
public struct BackupOutcome: Sendable, Codable, Equatable {
    public struct Disk: Sendable, Codable, Equatable {
        public var target: String
        /// `full` (a standalone image) or `incremental` (an overlay over the parent point's image).
        public var mode: String
        /// Bytes read from the disk's export.
        public var bytesRead: UInt64
        /// Requests to the disk's export that failed and were tried again.
        public var retries: Int

        enum CodingKeys: String, CodingKey {
            case target, mode, retries
            case bytesRead = "bytes_read"
        }
    }

    public struct Skipped: Sendable, Codable, Equatable {
        public var target: String
        public var reason: String
    }

    public var domain: String
    public var point: String
    public var level: String
    /// Why this level was chosen.
    public var reason: String
    public var parent: String?
    public var checkpoint: String
    public var disks: [Disk]
    /// Every disk of the domain left out of the point, with the reason.
    public var skipped: [Skipped]
    /// The skipped disks that were not left out on purpose (by `--disk`, `--exclude` or an explicit
    /// `--raw-disks skip`; cdrom and floppy drives are never backed up): when there are any, the point is partial.
    public var missing: [Skipped]
    public var seconds: Double
    /// With a source check: what it found on each disk; absent otherwise.
    public var sourceCheck: [SourceCheckReport]?
    /// The domain's state kept besides its disks, by kind (`nvram`, `tpm`); absent when none.
    public var state: [String]?

    enum CodingKeys: String, CodingKey {
        case domain, point, level, reason, parent, checkpoint, disks, skipped, missing, seconds, state
        case sourceCheck = "source_check"
    }
}
