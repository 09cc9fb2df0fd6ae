import Foundation
import Repository

/// Which points a prune keeps, rewrites and removes, decided from the repository's manifests alone and checked
/// before anything changes: every kept point's chains must be whole (``PointChain``), whatever the rule.
struct PrunePlan: Sendable {
    /// The points kept, oldest first.
    var kept: [BackupPoint]
    /// The kept incremental points based on a point that is not kept, oldest first: each becomes a synthetic full.
    var merged: [BackupPoint]
    /// The points not kept, oldest first.
    var removed: [BackupPoint]

    /// The plan for `points` (oldest first) of `domain`, whose folder is `domainFolder`, under `rule` at `now`.
    static func make(
        _ points: [BackupPoint], rule: RetentionRule, now: Date, domain: String, in domainFolder: String
    ) throws(BackupError) -> PrunePlan {
        try make(points, rule: rule, now: now) { target, point throws(BackupError) in
            _ = try PointChain.of(target, at: point, among: points, domain: domain, in: domainFolder)
        }
    }

    /// The plan for `points` (oldest first) of `domain` in `repository`, a folder or a bucket, under `rule` at `now`.
    static func make(
        _ points: [BackupPoint], rule: RetentionRule, now: Date, domain: String, in repository: BackupRepository
    ) throws(BackupError) -> PrunePlan {
        try make(points, rule: rule, now: now) { target, point throws(BackupError) in
            _ = try PointChain.of(target, at: point, among: points, domain: domain, in: repository)
        }
    }

    /// The plan, once `checkChain` accepted the chain of each disk of each kept point.
    private static func make(
        _ points: [BackupPoint], rule: RetentionRule, now: Date,
        checkChain: (String, BackupPoint) throws(BackupError) -> Void
    ) throws(BackupError) -> PrunePlan {
        let kept = rule.kept(points, now: now)
        let keptIDs = Set(kept.map(\.id))
        for point in kept {
            for disk in point.manifest.disks { try checkChain(disk.target, point) }
        }
        // By induction from the oldest: a kept point whose parent is kept reads only kept points once each point
        // below it that is based on a removed one has become full.
        let merged = kept.filter { point in point.manifest.parent.map { !keptIDs.contains($0) } ?? false }
        return PrunePlan(kept: kept, merged: merged, removed: points.filter { !keptIDs.contains($0.id) })
    }

    /// The next of `removing` that may go while `listed` are in the repository: one no listed point is based on,
    /// the newest such (a point goes before the one it is based on); nil when each is still needed.
    static func nextRemovable(_ removing: [BackupPoint], listed: [BackupPoint]) -> BackupPoint? {
        let parents = Set(listed.compactMap(\.manifest.parent))
        return removing.last { !parents.contains($0.id) }
    }
}
