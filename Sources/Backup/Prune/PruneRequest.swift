import Foundation
import Repository

/// What to prune, and how: the request behind `pullback prune`.
public struct PruneRequest: Sendable {
    /// The domain whose points to prune.
    public var domain: String
    /// The repository's root folder.
    public var repository: String
    /// Which points to keep.
    public var rule: RetentionRule
    /// Only say what would be kept, merged and removed; change nothing.
    public var dryRun: Bool
    /// The libvirt URI through which the removed points' checkpoints are deleted; nil uses `LIBVIRT_DEFAULT_URI`,
    /// else `qemu:///system`.
    public var connectURI: String?
    /// The time `RetentionRule.within` counts back from.
    public var now: Date

    public init(
        domain: String, repository: String, rule: RetentionRule, dryRun: Bool = false, connectURI: String? = nil,
        now: Date = Date()
    ) {
        self.domain = domain
        self.repository = repository
        self.rule = rule
        self.dryRun = dryRun
        self.connectURI = connectURI
        self.now = now
    }
}

/// What a prune did, or with `dryRun`, would do.
public struct PruneOutcome: Sendable, Codable, Equatable {
    public var domain: String
    public var dryRun: Bool
    /// The points kept, oldest first.
    public var kept: [String]
    /// The kept points rewritten as synthetic full points, oldest first.
    public var merged: [String]
    /// The points removed, in the order they were removed (a point before the one it is based on).
    public var removed: [String]
    /// The repository's checkpoints deleted from libvirt.
    public var checkpointsRemoved: [String]
    /// Disk space given back: the removed points' files and the merged points' old images, less the merged images
    /// written. A dry run counts the removed points only: a merged image's size is known once it is written.
    public var bytesFreed: Int64

    enum CodingKeys: String, CodingKey {
        case domain, kept, merged, removed
        case dryRun = "dry_run"
        case checkpointsRemoved = "checkpoints_removed"
        case bytesFreed = "bytes_freed"
    }
}
