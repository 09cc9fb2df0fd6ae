import Foundation
import Libvirt
import Logging
import Repository

/// The base of a backup: the point and checkpoint it continues from (none for a full backup), and why.
struct LevelChoice: Sendable {
    var parent: BackupPoint?
    var reason: String

    /// Decides full or incremental. An incremental continues from the newest committed point's checkpoint;
    /// a checkpoint libvirt lost (domain re-created, metadata gone) is redefined from the point's saved XML,
    /// which works while the disks still carry its bitmap.
    static func choose(
        _ level: BackupLevel, domain: Domain, latest: BackupPoint?, logger: Logger
    ) async throws(BackupError) -> LevelChoice {
        if level == .full { return LevelChoice(parent: nil, reason: "--level full") }
        guard let latest else {
            let reason = "the repository has no point of \(domain.name) yet"
            if level == .incremental {
                throw BackupError(
                    .invalidRequest, "cannot make an incremental backup: \(reason); run a full backup first")
            }
            return LevelChoice(parent: nil, reason: reason)
        }
        let checkpoint = latest.manifest.checkpoint
        let names = try await BackupRun.libvirtStep { () async throws(LibvirtError) in
            try await domain.checkpointNames()
        }
        if names.contains(checkpoint) {
            return LevelChoice(parent: latest, reason: "continuing from point \(latest.id) (checkpoint \(checkpoint))")
        }
        let savedXML = (try? latest.savedFile("checkpoint.xml")) ?? ""
        do throws(LibvirtError) {
            guard !savedXML.isEmpty else {
                throw LibvirtError(.noCheckpoint, "point \(latest.id) has no saved checkpoint XML")
            }
            _ = try await domain.createCheckpoint(xml: savedXML, redefine: true)
            logger.notice("checkpoint \(checkpoint) was missing from libvirt; redefined it from point \(latest.id)")
            return LevelChoice(
                parent: latest, reason: "continuing from point \(latest.id) (checkpoint \(checkpoint), redefined)")
        } catch {
            let reason =
                "checkpoint \(checkpoint) of point \(latest.id) is gone from libvirt and cannot be redefined (\(error.message))"
            if level == .incremental {
                throw BackupError(.invalidRequest, "cannot make an incremental backup: \(reason); run a full backup")
            }
            return LevelChoice(parent: nil, reason: reason)
        }
    }
}
