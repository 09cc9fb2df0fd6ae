import Foundation
import Libvirt
import Logging
import Repository

/// Ends the backup jobs that runs of this repository recorded and did not see end (killed, or unable to reach
/// libvirt at the end). libvirt keeps such a job until someone aborts it, and refuses every other backup of the
/// domain meanwhile. The run's checkpoint is then removed by ``CheckpointPruning`` and its `.partial` folder by
/// the repository.
enum AbandonedJobs {
    /// For each record: ends the domain's backup job if it exports the record's socket (unique to the run that
    /// recorded it), so any other job, another tool's or another repository's, is left alone; shuts the domain
    /// off again if that run had started it paused and it still is; then forgets the record. A record is kept
    /// while libvirt cannot say what the domain is doing.
    static func end(
        _ domain: Domain, repository: BackupRepository, lock: borrowing DomainLock, logger: Logger
    ) async throws(BackupError) {
        let records: [(id: String, record: JobRecord)]
        do throws(RepositoryError) { records = try repository.jobRecords(of: domain.name, lock: lock) } catch {
            throw BackupError(.repository, error.message, cause: error)
        }
        for (id, record) in records {
            guard let address = record.address else {
                repository.forgetJob(id, of: domain.name, lock: lock)  // names no export: no job can be its
                continue
            }
            // A shut-off domain runs no job (`runsBackupJob` says so) and is not paused.
            guard let state = try? await domain.state(),
                let ours = try? await domain.runsBackupJob(exporting: address)
            else { continue }
            if ours {
                logger.notice(
                    "ending the backup job an interrupted run of this repository left on \(domain.name) (point \(id))")
                try await RunStep.libvirt { () async throws(LibvirtError) in
                    try await domain.endBackupJob(exporting: address)
                }
            }
            if record.startedDomain, state == .paused {
                logger.notice(
                    "shutting \(domain.name) off again: the interrupted run had started it paused for its backup")
                try await RunStep.libvirt { () async throws(LibvirtError) in try await domain.destroy() }
            }
            // The run's private folder held the export socket and nothing of value. Removed only when it can be
            // shown to be one a run of ours made: a record is repository content, and may name any folder.
            if let socket = record.exportSocket, let folder = RunFolder.owning(socket: socket) {
                RunFolder.remove(folder)
            }
            repository.forgetJob(id, of: domain.name, lock: lock)
        }
    }
}

extension JobRecord {
    /// The export the record's job was begun with, or nil for a record that names none.
    var address: ExportAddress? {
        if let socket = exportSocket { return .unixSocket(socket) }
        if let host = exportHost, let port = exportPort { return .tcp(host: host, port: port, certificates: nil) }
        return nil
    }
}
