import Foundation
import Libvirt
import Repository

/// Ends the backup job that a killed run of this repository left on the domain. libvirt keeps such a job until
/// someone aborts it, and refuses every other backup of the domain meanwhile; the run's checkpoint is then removed
/// by ``CheckpointPruning`` and its `.partial` folder by the repository.
enum AbandonedJobs {
    /// Ends the domain's backup job if it is one of `records` (recognised by its export socket, which was unique to
    /// the run that recorded it); any other job, another tool's or another repository's, is left alone.
    static func end(_ domain: Domain, records: [JobRecord], say: @Sendable (String) -> Void) async throws(BackupError) {
        guard !records.isEmpty, let job = try? await domain.jobInfo(), job.isBackupActive,
            let xml = try? await domain.backupXML(),
            let record = records.first(where: { xml.contains("'\($0.exportSocket)'") || xml.contains("\"\($0.exportSocket)\"") })
        else { return }
        say("ending the backup job an interrupted run of this repository left on \(domain.name) (checkpoint \(record.checkpoint))")
        try await BackupRun.libvirtStep { () async throws(LibvirtError) in try await domain.endJob() }
        // The run's private folder: it held the export socket and nothing of value.
        let folder = (record.exportSocket as NSString).deletingLastPathComponent
        if (folder as NSString).lastPathComponent.hasPrefix("pullback-") {
            try? FileManager.default.removeItem(atPath: folder)
        }
    }
}
