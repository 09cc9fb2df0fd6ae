import Libvirt
import Logging
import Repository

/// Removes the repository's checkpoints that can never be a base again, before a backup creates its own.
///
/// Only the newest committed point's checkpoint is ever a base, so the others are dead weight: QEMU updates one
/// dirty bitmap per checkpoint and disk on every guest write. They are those of older points, and those of runs that
/// failed while the domain was shut off (libvirt deletes no checkpoint of a shut-off domain). A checkpoint is this
/// repository's only when its name carries the repository's tag (`pullback-<tag>-<point>`): a manifest naming
/// another checkpoint (another tool's, or one of an older build) does not make it the repository's to delete.
enum CheckpointPruning {
    /// Deletes the repository's checkpoints of `domain` except `keep`; the domain must be running. Failures become
    /// notes: a stale checkpoint costs guest write speed, never correctness.
    static func prune(
        _ domain: Domain, repository: RepositoryIdentity, keep: String?, logger: Logger
    ) async {
        await prune(domain, repository: repository, keeping: Set(keep.map { [$0] } ?? []), logger: logger)
    }

    /// Deletes the repository's checkpoints of `domain` except those in `keeping` (`prune` keeps the checkpoint of
    /// every point it keeps), and returns the names it deleted; failures become notes, as above.
    @discardableResult
    static func prune(
        _ domain: Domain, repository: RepositoryIdentity, keeping: Set<String>, logger: Logger
    ) async -> [String] {
        let names: [String]
        do {
            names = try await domain.checkpointNames()
        } catch {
            logger.warning("cannot list the checkpoints of \(domain.name) to remove stale ones: \(error.message)")
            return []
        }
        let stale = names.filter { !keeping.contains($0) && CheckpointName.isMade($0, by: repository) }
        var removed: [String] = []
        for name in stale {
            do throws(LibvirtError) {
                try await domain.checkpoint(named: name).delete()
                removed.append(name)
            } catch {
                logger.warning("cannot remove the stale checkpoint \(name): \(error.message)")
            }
        }
        if !removed.isEmpty {
            let what = removed.count == 1 ? "checkpoint" : "\(removed.count) checkpoints"
            logger.notice("removed \(what) no backup will start from again: \(removed.joined(separator: ", "))")
        }
        return removed
    }
}
