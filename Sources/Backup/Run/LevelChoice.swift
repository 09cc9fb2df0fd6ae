import Foundation
import Libvirt
import Logging
import QCOW2
import Repository

/// The base of a backup: the point and checkpoint it continues from (none for a full backup), and why.
struct LevelChoice: Sendable {
    var parent: BackupPoint?
    var reason: String
    /// For a synthetic full (a chain at `--max-chain`): the images of the parent's chain of each disk to build from,
    /// top first, by target; empty until ``SyntheticBase`` has checked them, nil for any other backup. The job is
    /// then an incremental from the parent's checkpoint, but each disk's image is a standalone one: the parent's
    /// chain with the export's dirty ranges laid over it.
    var repositoryLayers: [String: [QCOW2Chain.ExpectedLayer]]?

    /// Whether the point is a synthetic full, built from the repository and the changes since ``parent``.
    var isSynthetic: Bool { repositoryLayers != nil && parent != nil }
    /// The level the committed point has.
    var level: BackupManifest.Level { parent == nil || isSynthetic ? .full : .incremental }

    /// Decides full or incremental. An incremental continues from the newest committed point's checkpoint;
    /// a checkpoint libvirt lost (domain re-created, metadata gone) is redefined from the point's saved XML,
    /// which works while the disks still carry its bitmap.
    ///
    /// A chain is never made longer than a reader opens (``PointChain/maximumDepth``): an incremental that would be
    /// is refused before anything starts. Under `auto`, a chain of `maximumChain` points starts again with a full:
    /// a synthetic one, built from the repository and the changes since the newest point, when its checkpoint can be
    /// used (``SyntheticBase`` checks the repository's side), else a full read of the disks.
    static func choose(
        _ level: BackupLevel, domain: Domain, points: [BackupPoint], maximumChain: Int, logger: Logger
    ) async throws(BackupError) -> LevelChoice {
        guard (1...PointChain.maximumDepth).contains(maximumChain) else {
            throw BackupError(
                .invalidRequest,
                "the longest chain must be from 1 to \(PointChain.maximumDepth) points, not \(maximumChain)")
        }
        if level == .full { return LevelChoice(parent: nil, reason: "--level full") }
        guard let latest = points.last else {
            let reason = "the repository has no point of \(domain.name) yet"
            if level == .incremental {
                throw BackupError(
                    .invalidRequest, "cannot make an incremental backup: \(reason); run a full backup first")
            }
            return LevelChoice(parent: nil, reason: reason)
        }
        let length = chainLength(of: latest, among: points)
        if length >= PointChain.maximumDepth, level == .incremental {
            throw BackupError(
                .invalidRequest,
                "cannot make an incremental backup: point \(latest.id) ends a chain of \(length) points, and a chain of more than \(PointChain.maximumDepth) cannot be restored; run a full backup"
            )
        }
        let atLimit = length >= maximumChain && level == .auto
        let limit = limitReason(latest, length: length)
        // At the limit, the checkpoint's changes make a synthetic full with the repository's images.
        func continuing(_ detail: String) -> LevelChoice {
            guard atLimit else {
                return LevelChoice(parent: latest, reason: "continuing from point \(latest.id) \(detail)")
            }
            return LevelChoice(
                parent: latest,
                reason: "\(limit); the new full point is built from the repository and the changes since \(latest.id)",
                repositoryLayers: [:])
        }
        let checkpoint = latest.manifest.checkpoint
        let names = try await RunStep.libvirt { () async throws(LibvirtError) in
            try await domain.checkpointNames()
        }
        if names.contains(checkpoint) {
            return continuing("(checkpoint \(checkpoint))")
        }
        guard let problem = await redefine(checkpoint, of: latest, in: domain, logger: logger) else {
            return continuing("(checkpoint \(checkpoint), redefined)")
        }
        let reason =
            "checkpoint \(checkpoint) of point \(latest.id) is gone from libvirt and cannot be redefined (\(problem))"
        if atLimit {
            return LevelChoice(
                parent: nil, reason: "\(limit), and \(reason): the new full point reads the disks in full")
        }
        if level == .incremental {
            throw BackupError(.invalidRequest, "cannot make an incremental backup: \(reason); run a full backup")
        }
        return LevelChoice(parent: nil, reason: reason)
    }

    /// Redefines `checkpoint`, which libvirt lost, from `point`'s saved XML: nil when that worked, else why not (no
    /// saved XML, a saved XML the repository cannot read, or libvirt's refusal).
    private static func redefine(
        _ checkpoint: String, of point: BackupPoint, in domain: Domain, logger: Logger
    ) async -> String? {
        let savedXML: String?
        do throws(RepositoryError) { savedXML = try point.savedFile("checkpoint.xml") } catch { return error.message }
        guard let savedXML, !savedXML.isEmpty else { return "point \(point.id) has no saved checkpoint XML" }
        do throws(LibvirtError) {
            _ = try await domain.createCheckpoint(xml: savedXML, redefine: true)
        } catch {
            return error.message
        }
        logger.notice("checkpoint \(checkpoint) was missing from libvirt; redefined it from point \(point.id)")
        return nil
    }

    /// Why a backup under `auto` starts a new chain after `point`, the end of a chain of `length` points.
    static func limitReason(_ point: BackupPoint, length: Int) -> String {
        "point \(point.id) ends a chain of \(length) points, the longest --max-chain allows"
    }

    /// How many points the chain ending at `point` holds, itself and its full included, by the parents the manifests
    /// name; a parent that is missing or named twice ends the count (restore then refuses the chain and says why).
    static func chainLength(of point: BackupPoint, among points: [BackupPoint]) -> Int {
        let byID = Dictionary(points.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var seen: Set<String> = [point.id]
        var current = point
        while let parentID = current.manifest.parent, let parent = byID[parentID], seen.insert(parentID).inserted {
            current = parent
        }
        return seen.count
    }
}
