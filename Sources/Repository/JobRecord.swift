import Foundation

/// The libvirt backup job a run has begun, kept in its pending point as `job.json` while the job runs. A run that
/// is killed (SIGKILL, a crash, the machine) cannot end its job, and libvirt keeps it, refusing every later backup
/// of the domain; the next run of this repository finds the record in the abandoned `.partial` folder, recognises
/// the job as that run's by its export socket, and ends it.
public struct JobRecord: Codable, Sendable, Equatable {
    static let fileName = "job.json"

    /// The unix socket of the job's NBD export: unique to the run, and named in libvirt's backup XML.
    public var exportSocket: String
    /// The checkpoint the job created.
    public var checkpoint: String

    public init(exportSocket: String, checkpoint: String) {
        self.exportSocket = exportSocket
        self.checkpoint = checkpoint
    }
}

extension PendingPoint {
    /// Records the job this run has begun (durably: the record must outlive a kill that follows at once).
    public func recordJob(_ record: JobRecord) throws(RepositoryError) {
        let bytes: Data
        do {
            bytes = try JSONEncoder().encode(record)
        } catch {
            throw RepositoryError(.io, "cannot encode the job record: \(error)")
        }
        try FileSync.writeDurably(Array(bytes), to: folder + "/" + JobRecord.fileName)
    }

    /// Forgets the job once it has ended, so that the committed point does not carry the record.
    public func clearJobRecord() {
        unlink(folder + "/" + JobRecord.fileName)
    }
}

extension BackupRepository {
    /// The jobs recorded by runs of `domain` that ended without cleaning up: the records in its `.partial`
    /// folders. Only meaningful under the domain's lock, when no run of this repository is alive.
    public func abandonedJobs(of domain: String, lock: borrowing DomainLock) -> [JobRecord] {
        let domainFolder = folder(of: domain)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: domainFolder)) ?? []
        return names.filter { $0.hasSuffix(".partial") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: domainFolder + "/" + name + "/" + JobRecord.fileName)
                .flatMap { try? JSONDecoder().decode(JobRecord.self, from: $0) }
        }
    }
}
