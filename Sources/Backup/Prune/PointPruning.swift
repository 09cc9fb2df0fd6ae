import Engine
import Foundation
import Libvirt
import Logging
import QCOW2
import Repository

/// `pullback prune`: keeps a domain's newest points by a ``RetentionRule`` and removes the others, never touching the
/// domain's disks.
///
/// Under the domain's lock, in this order, each step leaving a repository whose every listed point restores and
/// verifies (the on-disk side of each step is described at ``Repository/BackupRepository/rewrite(_:of:lock:_:)``):
///
/// 1. What killed runs left (`.partial` folders) is removed, and the plan made and checked (``PrunePlan``); the images
///    each merge will read are checked against their recorded digests, as `verify` does, since a merge gives what it
///    reads a fresh digest.
/// 2. Each kept incremental point based on a point that is not kept, oldest first, is rewritten as a synthetic full:
///    each disk's chain is read through the QCOW2 chain reader and written by the QCOW2 writer into a standalone image
///    (``Engine/Copy``, as `restore` does), hashed as it is written, and the point's folder is swapped for the
///    new one atomically (in a bucket: the new point is staged whole, then copied over the point's objects, its
///    manifest last). Its children's backing files name the same path, which reads the same disk.
/// 3. The points not kept are removed one at a time, newest first: a point goes only when no listed point is based on
///    it, so none of those still listed loses a parent.
/// 4. The repository's checkpoints that no kept point has are deleted from libvirt when the domain can be reached
///    (a note when not): the kept points' checkpoints stay, so the next backup continues incrementally.
///
/// A kill between steps, or within one, leaves `.partial` folders at most; running prune again (or a backup)
/// removes them (installing first a bucket's rewrite staged whole), and prune then finishes what the rule asks.
public enum PointPruning {
    /// Runs `request`. Notes (the domain cannot be reached, checkpoints deleted) go to `logger` at `notice`, as a
    /// backup's do.
    public static func run(
        _ request: PruneRequest,
        logger: Logger = Logger(label: "pullback.prune", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws(BackupError) -> PruneOutcome {
        let repository = BackupRepository(root: request.repository)
        // Nothing is made or locked for a domain the repository does not have, nor in a dry run.
        let points = try PruneStep.repository { () throws(RepositoryError) -> [BackupPoint] in
            try repository.requireRepository()
            let points = try repository.points(of: request.domain)
            guard !points.isEmpty else {
                throw RepositoryError(
                    .notFound, "the repository \(request.repository) has no point of \(request.domain)")
            }
            return points
        }
        if request.dryRun {
            let plan = try PrunePlan.make(
                points, rule: request.rule, now: request.now, domain: request.domain, in: repository)
            var bytesFreed = freed(by: plan, repository)
            for point in plan.merged {
                let change = try await mergeChange(point, among: points, of: request.domain, in: repository)
                bytesFreed = bytesFreed.addingReportingOverflow(change).partialValue
            }
            return outcome(of: plan, request: request, repository: repository, bytesFreed: bytesFreed)
        }
        let lock: DomainLock
        do {
            lock = try repository.lock(request.domain)
        } catch {
            throw BackupError(.repository, error.message, cause: error)
        }
        return try await prune(request, repository: repository, lock: lock, logger: logger)
    }

    /// The prune itself, under `lock`.
    private static func prune(
        _ request: PruneRequest, repository: BackupRepository, lock: borrowing DomainLock, logger: Logger
    ) async throws(BackupError) -> PruneOutcome {
        do {
            try await repository.discardUnfinishedWork(of: request.domain, lock: lock)
        } catch {
            throw BackupError(.repository, error.message, cause: error)
        }
        // Read again under the lock: a backup may have committed a point since.
        let listed = try PruneStep.repository { () throws(RepositoryError) in
            try repository.points(of: request.domain)
        }
        let plan = try PrunePlan.make(
            listed, rule: request.rule, now: request.now, domain: request.domain, in: repository)
        // A merge writes a fresh digest over whatever it reads: damage in the chain would come out looking whole.
        for point in plan.merged {
            try await requireIntact(point, of: request.domain, in: repository)
        }
        var bytesFreed = freed(by: plan, repository)
        for point in plan.merged {
            let before = repository.allocatedBytes(of: point)
            let rewritten = try await rewrite(point, of: request.domain, in: repository, lock: lock)
            bytesFreed = bytesFreed.addingReportingOverflow(Int64(clamping: before)).partialValue
            bytesFreed =
                bytesFreed.subtractingReportingOverflow(
                    Int64(clamping: repository.allocatedBytes(of: rewritten))
                ).partialValue
            logger.info("rewrote point \(point.id) as a full point")
        }
        try await removeOld(plan.removed, of: request.domain, in: repository, lock: lock, logger: logger)
        var outcome = outcome(of: plan, request: request, repository: repository, bytesFreed: bytesFreed)
        outcome.checkpointsRemoved = await removeCheckpoints(
            keeping: Set(plan.kept.map(\.manifest.checkpoint)), request: request, repository: repository,
            logger: logger)
        return outcome
    }

    private static func outcome(
        of plan: PrunePlan, request: PruneRequest, repository: BackupRepository, bytesFreed: Int64
    ) -> PruneOutcome {
        // The merged points are based on nothing once rewritten.
        let merged = Set(plan.merged.map(\.id))
        let kept = plan.kept.map { point in
            var point = point
            if merged.contains(point.id) { point.manifest.parent = nil }
            return point
        }
        return PruneOutcome(
            domain: request.domain, dryRun: request.dryRun, kept: plan.kept.map(\.id), merged: plan.merged.map(\.id),
            removed: removalOrder(plan.removed, listed: kept + plan.removed).map(\.id), checkpointsRemoved: [],
            bytesFreed: bytesFreed)
    }

    /// The bytes the removed points take.
    private static func freed(by plan: PrunePlan, _ repository: BackupRepository) -> Int64 {
        plan.removed.reduce(Int64(0)) {
            $0.addingReportingOverflow(Int64(clamping: repository.allocatedBytes(of: $1))).partialValue
        }
    }

    /// The bytes merging `point` into a full point would free (negative: take), for a dry run: its images' blocks
    /// less the standalone images the merge would write, sized from the chains' tables without reading data.
    private static func mergeChange(
        _ point: BackupPoint, among points: [BackupPoint], of domain: String, in repository: BackupRepository
    ) async throws(BackupError) -> Int64 {
        let chains = try PointVerification.chains(of: point, among: points, domain: domain, in: repository)
        var change: Int64 = 0
        for chain in chains {
            let merged: UInt64
            do throws(CopyError) {
                merged = try await Copy.mergedFileBytes(exactly: chain.expectedLayers)
            } catch {
                throw BackupError(
                    .copy, "cannot size the merge of point \(point.id) of \(domain): \(error.message)", cause: error)
            }
            let current =
                chain.images.first.map { image in
                    image.object.map { $0.store.storedBytes(of: $0.key) }
                        ?? repository.allocatedBytes(ofFile: image.path)
                } ?? 0
            change = change.addingReportingOverflow(Int64(clamping: current)).partialValue
            change = change.subtractingReportingOverflow(Int64(clamping: merged)).partialValue
        }
        return change
    }

    /// `removing` in an order in which each goes once no listed point is based on it.
    private static func removalOrder(_ removing: [BackupPoint], listed: [BackupPoint]) -> [BackupPoint] {
        var (left, listed, order) = (removing, listed, [BackupPoint]())
        while let next = PrunePlan.nextRemovable(left, listed: listed) {
            order.append(next)
            left.removeAll { $0.id == next.id }
            listed.removeAll { $0.id == next.id }
        }
        return order
    }

    /// Rewrites `point` as a synthetic full: every disk's chain merged into a standalone image.
    private static func rewrite(
        _ point: BackupPoint, of domain: String, in repository: BackupRepository, lock: borrowing DomainLock
    ) async throws(BackupError) -> BackupPoint {
        let points = try PruneStep.repository { () throws(RepositoryError) in try repository.points(of: domain) }
        let layers = try PointVerification.chains(of: point, among: points, domain: domain, in: repository)
            .map(\.expectedLayers)
        return try await PruneStep.transaction {
            try await repository.rewrite(point, of: domain, lock: lock) { staging in
                var manifest = point.manifest
                manifest.level = .full
                manifest.originalParent = manifest.originalParent ?? manifest.parent
                manifest.parent = nil
                manifest.synthetic = true
                // One pool for the disks, which are merged one after the other.
                let buffers = TransferOptions.chainReading.sharedBuffers()
                for (index, disk) in manifest.disks.enumerated() {
                    let image = staging.imageTarget(
                        disk.target, over: nil, compression: point.manifest.clusterCompression)
                    let digest = try await merge(layers[index], to: image, buffers: buffers)
                    manifest.disks[index].backingImage = nil
                    manifest.disks[index].imageDigest = digest
                    // The content is the point's own: its digest stays, and its block hashes too once checked against
                    // it (damaged ones are left out: the next point then has no digest, as after an older build's).
                    if disk.blockHashes != nil {
                        var written: (contentDigest: String, blockHashes: String)?
                        if let table = await PointBlockHashes.table(of: point, target: disk.target, logger: nil) {
                            written = try await PointBlockHashes.write(table, of: disk.target, into: staging)
                        }
                        manifest.disks[index].blockHashes = written?.blockHashes
                    }
                }
                return manifest
            }
        }
    }

    /// Throws unless every image `point` is read from matches the digest its manifest recorded, as `verify` checks.
    private static func requireIntact(
        _ point: BackupPoint, of domain: String, in repository: BackupRepository
    ) async throws(BackupError) {
        let report = try await PointVerification.verify(repository: repository.root, domain: domain, at: point.id)
        let failures = report.failures
        guard failures.isEmpty else {
            throw BackupError(
                .repository,
                "point \(point.id) of \(domain) is to be merged into a full point, but \(failures.count) of the images it is read from are damaged or missing: \(failures.map(\.path).joined(separator: ", ")); merging would give the damage a new digest. Restore them from another copy of the repository; nothing was changed"
            )
        }
    }

    /// Writes the disk `layers` describe to the new standalone image `image`, and returns its digest as a backup
    /// records it.
    private static func merge(
        _ layers: [QCOW2Chain.ExpectedLayer], to image: CopyTarget, buffers: BufferPool
    ) async throws(BackupError) -> String {
        do throws(CopyError) {
            let copy = CopyDescription(
                from: .chain(layers), to: image.digested(),
                transfer: TransferOptions.chainReading.reading(into: buffers))
            if let digest = try await Copy.run(copy).imageDigest {
                return ImageDigest.recorded(
                    headLength: digest.headLength, head: digest.head, tail: digest.tail, piecewise: digest.piecewise)
            }
        } catch {
            throw BackupError(
                error.code == .interrupted || Task.isCancelled ? .interrupted : .copy,
                "merging \(layers.first?.path ?? image.path) into a full image failed: \(error.message)", cause: error)
        }
        // The writer could not hash it as it wrote: read back, as a backup does then.
        return try await ImageDigests.of([(name: image.path, path: image.path, like: nil, object: nil)])[0]
    }

    /// Removes `removing`, each once no listed point is based on it.
    private static func removeOld(
        _ removing: [BackupPoint], of domain: String, in repository: BackupRepository, lock: borrowing DomainLock,
        logger: Logger
    ) async throws(BackupError) {
        var left = removing
        while !left.isEmpty {
            let listed = try PruneStep.repository { () throws(RepositoryError) in
                try repository.points(of: domain)
            }
            guard let next = PrunePlan.nextRemovable(left, listed: listed) else {
                throw BackupError(
                    .repository,
                    "cannot remove \(left.map(\.id).joined(separator: ", ")) of \(domain): a listed point is still based on them"
                )
            }
            try await PruneStep.transaction { try await repository.remove(next, of: domain, lock: lock) }
            left.removeAll { $0.id == next.id }
            logger.info("removed point \(next.id)")
        }
    }

    /// Deletes the repository's checkpoints of the domain but those in `keeping`, and returns their names; when the
    /// domain cannot be reached, says so in one note and returns none.
    private static func removeCheckpoints(
        keeping: Set<String>, request: PruneRequest, repository: BackupRepository, logger: Logger
    ) async -> [String] {
        guard let identity = try? repository.identity() else { return [] }
        let connection: LibvirtConnection
        do throws(LibvirtError) { connection = try await LibvirtConnection.open(uri: request.connectURI) } catch {
            logger.notice(
                "cannot reach libvirt to delete the removed points' checkpoints (\(error.message)); the next backup deletes them"
            )
            return []
        }
        var removed: [String] = []
        do throws(LibvirtError) {
            let domain = try await connection.domain(named: request.domain)
            removed = await CheckpointPruning.prune(domain, repository: identity, keeping: keeping, logger: logger)
        } catch {
            logger.notice(
                "cannot reach \(request.domain) through libvirt (\(error.message)); the removed points' checkpoints, if any, were left"
            )
        }
        await connection.close()
        return removed
    }
}
