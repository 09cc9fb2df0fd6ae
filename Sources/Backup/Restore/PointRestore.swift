import Engine
import FileIO
import Foundation
import QCOW2
import Repository
import SystemPackage

/// `pullback restore`: disks of a backup point written out as standalone images, all at once.
///
/// In three steps, which ``run(_:disks:to:format:overwrite:verifying:progress:)`` takes one after the other:
/// ``plan(_:disks:to:format:overwrite:compression:)`` refuses what cannot be done before anything is read or written,
/// ``check(_:progress:)`` looks for each image of the chains and reads those the write cannot check as it reads them,
/// and ``write(_:verifying:progress:)`` writes the images, checking the others against the digests their points
/// recorded from the very bytes it reads (``DigestsWhileReading``).
public enum PointRestore {
    /// One restored disk.
    public struct Restored: Sendable, Equatable {
        /// The disk's target, e.g. `vda`.
        public var target: String
        /// The image written, `<folder>/<target>.<format>`.
        public var path: String
        /// Data bytes written into it.
        public var bytesWritten: UInt64
    }

    /// A restore that can be done: its disks' chains, and where each image goes.
    public struct Plan: Sendable {
        struct Disk: Sendable {
            var chain: PointChain
            var image: StagedImage
        }

        /// The point restored.
        public let point: BackupPoint
        /// The folder the images go into.
        public let folder: String
        /// Their format.
        public let format: TargetFormat
        /// Whether images already in `folder` are replaced.
        public let overwrite: Bool
        /// How a qcow2 image's clusters are stored.
        public let compression: ClusterCompression
        let disks: [Disk]

        /// The disks restored, by target, in the order they are written.
        public var targets: [String] { disks.map(\.chain.target) }

        /// The image each disk will be written to, by target: a domain can be described before the images exist.
        public var images: [String: String] {
            Dictionary(uniqueKeysWithValues: disks.map { ($0.chain.target, $0.image.path) })
        }
    }

    /// Checks that disks `targets` (empty: every disk) of `point` can be restored into `folder` as
    /// `<target>.<format>` (a qcow2 image's clusters stored with `compression`), and returns what to read and write.
    /// Reads no image and writes nothing.
    ///
    /// `point` must have been read from a repository (its folder is `<repository>/<domain>/<id>`). Each disk is
    /// read from exactly the images its ``PointChain`` lists. Throws when a disk is not in the point, when its
    /// chain is not what the manifests must say, and when an image's name in `folder` is taken and `overwrite` is
    /// false (a folder there is refused either way).
    public static func plan(
        _ point: BackupPoint, disks targets: [String], to folder: String, format: TargetFormat,
        overwrite: Bool = false, compression: ClusterCompression = .none
    ) throws(BackupError) -> Plan {
        let available = point.manifest.disks.map(\.target)
        var chosen: [String] = []
        for target in targets.isEmpty ? available : targets where !chosen.contains(target) { chosen.append(target) }
        let (repository, domain) = try PointChain.location(of: point)
        var disks: [Plan.Disk] = []
        for target in chosen {
            guard available.contains(target) else {
                throw BackupError(
                    .invalidRequest,
                    "point \(point.id) of \(point.manifest.domainName) has no disk \(PointChain.printable(target)); it has \(available.map(PointChain.printable).joined(separator: ", "))"
                )
            }
            let chain = try PointChain.of(target, at: point, domain: domain, in: repository)
            let image = StagedImage(folder: folder, name: target + "." + format.rawValue)
            try image.checkReplaceable(overwrite: overwrite)
            disks.append(Plan.Disk(chain: chain, image: image))
        }
        return Plan(
            point: point, folder: folder, format: format, overwrite: overwrite,
            compression: format == .qcow2 ? compression : .none, disks: disks)
    }

    /// Looks for every image the plan's chains are made of, and reads those whose recorded digest the write cannot
    /// check as it reads them (older digest forms), each once, comparing it with that digest (as `pullback verify`
    /// does, ``PointVerification``); images of points made before digests were recorded are not checked. `progress`
    /// counts the bytes read, one part per image read. Throws with one line naming every image that is damaged,
    /// missing or unreadable. ``write(_:verifying:progress:rateLimiter:)`` checks the other images. Reads wait for
    /// `rateLimiter` when one is given.
    ///
    /// A digest by pieces is checked as the image is read: the restore's reads hold most pieces whole, and the rest
    /// (the image's tables, what newer images replace) is read at the end. The older forms need the image whole and
    /// in order, which a restore never reads: it reads each cluster from the newest image that has it.
    public static func check(_ plan: Plan, progress: JobProgress? = nil, rateLimiter: ByteRateLimiter? = nil)
        async throws(BackupError)
    {
        let entries = PointVerification.imagesByPoint(plan.disks.map(\.chain)).map {
            (domain: plan.point.manifest.domainName, target: $0.target, image: $0.image)
        }
        let failures = try await PointVerification.check(
            entries, progress: progress, readLater: DigestsWhileReading.checks, limiter: rateLimiter
        ).filter(\.isFailure)
        guard !failures.isEmpty else { return }
        let named = failures.map { image in
            switch image.status {
            case .missing: "\(image.path) is missing"
            case .unreadable: image.problem ?? "\(image.path) cannot be read"
            default: "\(image.path) does not match the digest its point recorded"
            }
        }
        throw refusal(plan, named)
    }

    /// The error of a restore that met damaged images, `named` one phrase each.
    private static func refusal(_ plan: Plan, _ named: [String]) -> BackupError {
        BackupError(
            .repository,
            "point \(plan.point.id) cannot be restored: \(named.joined(separator: "; ")); restore the image from another copy of the repository, or pass --no-verify to restore it as it is"
        )
    }

    /// Writes the plan's disks concurrently, counting into `progress` when given (one part per disk, each mapped
    /// first so that the job's total is known early), creating the folder (0700) if missing. Results are in the
    /// order of the plan's disks.
    ///
    /// Each image is written under a hidden name beside its own; only once every disk is written are they given
    /// their names, replacing what was there only when the plan overwrites. On failure or interruption no image
    /// of this restore is left, and an image already in the folder is as it was.
    ///
    /// With `verifying`, images whose digests are by pieces are checked against them from the bytes the restore reads,
    /// what it does not read being read at the end (``DigestsWhileReading``); a damaged image fails the restore and
    /// none is left. ``check(_:progress:rateLimiter:)`` checks the other images, before. Every read of the chains,
    /// and of what the check reads at the end, waits for `rateLimiter` when one is given.
    public static func write(
        _ plan: Plan, verifying: Bool = true, progress: JobProgress? = nil, rateLimiter: ByteRateLimiter? = nil
    ) async throws(BackupError) -> [Restored] {
        do throws(RepositoryError) { try BackupRepository.makeFolders(plan.folder) } catch {
            throw BackupError(.invalidRequest, "\(error.message); restore to another folder with --to", cause: error)
        }
        for disk in plan.disks { try disk.image.removeLeftover() }
        var digests = DigestsWhileReading()
        var chains: [[QCOW2Chain.ExpectedLayer]] = []
        for disk in plan.disks {
            chains.append(
                verifying
                    ? try digests.layers(of: disk.chain, scratchFolder: plan.folder) : disk.chain.expectedLayers)
        }
        let restored = try await writeImages(plan, chains: chains, progress: progress, rateLimiter: rateLimiter)
        do throws(BackupError) {
            let failures = try await digests.finish(limiter: rateLimiter)
            guard failures.isEmpty else { throw refusal(plan, failures) }
        } catch {
            discard(plan)
            throw error
        }
        do throws(BackupError) {
            // Quick renames, after the last long step: only a name taken meanwhile leaves some images named.
            for disk in plan.disks { try disk.image.commit(overwrite: plan.overwrite) }
        } catch {
            discard(plan)
            throw error
        }
        do throws(Errno) { try FilePaths.syncFolder(plan.folder) } catch {
            throw BackupError(.copy, "cannot flush the folder \(plan.folder): \(error)", cause: error)
        }
        return restored
    }

    /// Writes each disk of `plan` from its chain, under its hidden name; on failure or interruption, none is left.
    private static func writeImages(
        _ plan: Plan, chains: [[QCOW2Chain.ExpectedLayer]], progress: JobProgress?, rateLimiter: ByteRateLimiter?
    ) async throws(BackupError) -> [Restored] {
        progress?.expect(parts: plan.disks.count)
        // One pool for all the disks: memory stays that of one disk's restore however many are written.
        var transfer = TransferOptions.chainReading
        transfer = transfer.reading(into: transfer.sharedBuffers())
        transfer.measureTotal = progress != nil
        transfer.rateLimiter = rateLimiter
        let format = plan.format
        do {
            return try await withThrowingTaskGroup(of: (Int, Restored).self) { group in
                for (index, disk) in plan.disks.enumerated() {
                    let (target, image) = (disk.chain.target, disk.image)
                    var written = CopyTarget.new(image.stagedPath, format: format)
                    written.compression = plan.compression
                    let copy = CopyDescription(from: .chain(chains[index]), to: written, transfer: transfer)
                    group.addTask {
                        let counters = progress?.start(target) ?? CopyProgress()
                        defer { progress?.finish(counters) }
                        let summary = try await Copy.run(copy, progress: counters)
                        return (index, Restored(target: target, path: image.path, bytesWritten: summary.bytesWritten))
                    }
                }
                var restored: [Restored?] = Array(repeating: nil, count: plan.disks.count)
                for try await (index, disk) in group { restored[index] = disk }
                return restored.compactMap { $0 }
            }
        } catch let error as CopyError where error.code == .interrupted || Task.isCancelled {
            discard(plan)
            throw BackupError(.interrupted, error.message, cause: error)
        } catch let error as CopyError {
            discard(plan)
            throw BackupError(.copy, error.message, cause: error)
        } catch {
            discard(plan)
            throw BackupError(.interrupted, "interrupted")
        }
    }

    /// Plans, checks (unless `verifying` is false) and writes disks `targets` (empty: every disk) of `point` into
    /// `folder` as `<target>.<format>`; see ``plan(_:disks:to:format:overwrite:compression:)``, ``check(_:progress:)`` and
    /// ``write(_:verifying:progress:)``. `progress` counts the restore's reads; to watch the check as well, take the steps.
    public static func run(
        _ point: BackupPoint, disks targets: [String], to folder: String, format: TargetFormat,
        overwrite: Bool = false, verifying: Bool = true, progress: JobProgress? = nil
    ) async throws(BackupError) -> [Restored] {
        let plan = try plan(point, disks: targets, to: folder, format: format, overwrite: overwrite)
        if verifying { try await check(plan) }
        return try await write(plan, verifying: verifying, progress: progress)
    }

    /// Removes the hidden images of a restore that did not finish.
    private static func discard(_ plan: Plan) {
        for disk in plan.disks { disk.image.discard() }
    }
}
