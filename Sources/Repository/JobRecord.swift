import Foundation
import Storage

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
    /// It sits beside the pending point, not in it, because a failed run removes that.
    public func recordJob(_ record: JobRecord) throws(RepositoryError) {
        let bytes: Data
        do {
            bytes = try JSONEncoder().encode(record)
        } catch {
            throw RepositoryError(.io, "cannot encode the job record: \(error)")
        }
        try storeStep { () throws(StoreError) in
            try store.write(Array(bytes), to: RepositoryLayout.jobRecord(id, of: domain))
        }
    }

    /// Forgets the job once it is over.
    public func clearJobRecord() {
        try? store.delete(RepositoryLayout.jobRecord(id, of: domain))
    }
}

extension BackupRepository {
    /// The jobs that runs of `domain` recorded and did not see end, by the id of the run's point. Only meaningful
    /// under the domain's lock, when no run of this repository is alive. A domain folder that cannot be listed is
    /// an error with its cause; a record that cannot be read (a symbolic link, a FIFO, too large, not JSON) is no
    /// record of ours.
    public func jobRecords(of domain: String, lock: borrowing DomainLock) throws(RepositoryError)
        -> [(id: String, record: JobRecord)]
    {
        let entries = try storeStep { () throws(StoreError) in try store.list(under: RepositoryLayout.domain(domain)) }
        return entries.compactMap { entry -> (id: String, record: JobRecord)? in
            let name = entry.name
            guard entry.kind == .object, name.hasPrefix(JobRecord.filePrefix), name.hasSuffix(JobRecord.fileSuffix)
            else { return nil }
            let id = String(name.dropFirst(JobRecord.filePrefix.count).dropLast(JobRecord.fileSuffix.count))
            guard RepositoryNames.isValid(id), let key = try? RepositoryLayout.jobRecord(id, of: domain),
                let bytes = try? readSmall(key),
                let record = try? JSONDecoder().decode(JobRecord.self, from: Data(bytes))
            else { return nil }
            return (id, record)
        }
    }

    /// Removes the record of run `id`'s job, once the job is known to be over. Only the name is removed, never
    /// what a symbolic link by that name points to.
    public func forgetJob(_ id: String, of domain: String, lock: borrowing DomainLock) {
        guard RepositoryNames.isValid(id) else { return }
        try? store.delete(RepositoryLayout.jobRecord(id, of: domain))
    }
}
