import FileIO
import Foundation

/// The libvirt backup job of a run, kept as `<domain>/.job-<id>.json` from just before the job is begun until it
/// is known to be over. A run that is killed (SIGKILL, a crash, the machine), or that cannot end its job, leaves
/// the record; libvirt keeps such a job and refuses every later backup of the domain. The next run of this
/// repository reads the record, recognises the job as that run's by its export address, and ends it.
public struct JobRecord: Codable, Sendable, Equatable {
    /// The unix socket of the job's NBD export: unique to the run, and named in libvirt's backup XML. Nil for an
    /// export over TCP.
    public var exportSocket: String?
    /// The host and port of the job's NBD export over TCP (a remote hypervisor); nil for a unix socket.
    public var exportHost: String?
    public var exportPort: Int?
    /// The checkpoint the job creates.
    public var checkpoint: String
    /// Whether the run started the (shut-off) domain paused for the backup, so it is to be shut off again.
    public var startedDomain: Bool

    public init(exportSocket: String, checkpoint: String, startedDomain: Bool) {
        self.exportSocket = exportSocket
        self.checkpoint = checkpoint
        self.startedDomain = startedDomain
    }

    public init(exportHost: String, port: Int, checkpoint: String, startedDomain: Bool) {
        self.exportHost = exportHost
        self.exportPort = port
        self.checkpoint = checkpoint
        self.startedDomain = startedDomain
    }

    static let filePrefix = ".job-"
    static let fileSuffix = ".json"
}

extension PendingPoint {
    /// Records the job this run is about to begin, durably: the record must outlive a kill at any later instant.
    /// It sits beside the pending folder, not in it, because a failed run removes that folder.
    public func recordJob(_ record: JobRecord) throws(RepositoryError) {
        let bytes: Data
        do {
            bytes = try JSONEncoder().encode(record)
        } catch {
            throw RepositoryError(.io, "cannot encode the job record: \(error)")
        }
        try FileSync.writeDurably(Array(bytes), to: jobRecordPath)
        try FileSync.syncFolder(domainFolder)
    }

    /// Forgets the job once it is over.
    public func clearJobRecord() {
        try? FilePaths.remove(jobRecordPath)
    }

    private var domainFolder: String { (folder as NSString).deletingLastPathComponent }
    private var jobRecordPath: String { domainFolder + "/" + JobRecord.filePrefix + id + JobRecord.fileSuffix }
}

extension BackupRepository {
    /// The jobs that runs of `domain` recorded and did not see end, by the id of the run's point. Only meaningful
    /// under the domain's lock, when no run of this repository is alive.
    public func jobRecords(of domain: String, lock: borrowing DomainLock) -> [(id: String, record: JobRecord)] {
        let domainFolder = folder(of: domain)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: domainFolder)) ?? []
        return names.sorted().compactMap { name in
            // Read confined: a record that is a symbolic link, a FIFO or too large is no record of ours.
            guard name.hasPrefix(JobRecord.filePrefix), name.hasSuffix(JobRecord.fileSuffix),
                let bytes = try? FileSync.readSmallFile(domainFolder + "/" + name),
                let record = try? JSONDecoder().decode(JobRecord.self, from: Data(bytes))
            else { return nil }
            let id = String(name.dropFirst(JobRecord.filePrefix.count).dropLast(JobRecord.fileSuffix.count))
            guard RepositoryNames.isValid(id) else { return nil }
            return (id, record)
        }
    }

    /// Removes the record of run `id`'s job, once the job is known to be over. Only the name is removed, never
    /// what a symbolic link by that name points to.
    public func forgetJob(_ id: String, of domain: String, lock: borrowing DomainLock) {
        guard RepositoryNames.isValid(id) else { return }
        try? FilePaths.remove(folder(of: domain) + "/" + JobRecord.filePrefix + id + JobRecord.fileSuffix)
    }
}
