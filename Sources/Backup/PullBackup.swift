import Engine
import Foundation
import Libvirt
import Repository

#if canImport(Glibc)
    import Glibc
#endif

/// One pull-mode backup job: begin it, copy every disk from QEMU's NBD export into the pending point,
/// and end it, whatever happens.
enum PullBackup {
    static func copy(
        _ request: BackupRequest, domain: Domain, disks: [DomainDisk], skipped: [String], base: LevelChoice,
        checkpoint: String, into pending: PendingPoint, uuid: String, domainXML: String, started: Date,
        startedDomain: Bool
    ) async throws -> BackupManifest {
        let socketFolder = try privateFolder()
        defer { try? FileManager.default.removeItem(atPath: socketFolder) }
        let socket = socketFolder + "/nbd.sock"
        let scratch = request.scratchDirectory ?? socketFolder
        let parentDisks = Set(base.parent?.manifest.disks.map(\.target) ?? [])
        let entries = disks.map { disk in
            BackupXML.DiskEntry(
                target: disk.target, full: !parentDisks.contains(disk.target),
                scratchFile: scratch + "/\(disk.target).\(pending.id).scratch.qcow2")
        }
        let backupXML = BackupXML.backup(
            incrementalFrom: base.parent?.manifest.checkpoint, socket: socket, disks: entries, skipped: skipped)
        let checkpointXML = BackupXML.checkpoint(name: checkpoint, disks: entries.map(\.target), skipped: skipped)
        // Recorded before the job is begun, so that a kill at any instant after leaves a record the next run uses.
        try pending.recordJob(JobRecord(exportSocket: socket, checkpoint: checkpoint, startedDomain: startedDomain))
        var jobEnded = false
        do {
            try await BackupRun.libvirtStep { () async throws(LibvirtError) in
                try await domain.beginBackup(backupXML: backupXML, checkpointXML: checkpointXML)
            }
            try pending.write(domainXML, to: "domain.xml")
            let savedCheckpoint = try await BackupRun.libvirtStep { () async throws(LibvirtError) in
                try await domain.checkpoint(named: checkpoint).xmlDescription()
            }
            try pending.write(savedCheckpoint, to: "checkpoint.xml")
            let copied = try await withThrowingTaskGroup(of: BackupManifest.Disk.self) { group in
                for entry in entries {
                    group.addTask {
                        try await copyDisk(
                            entry, socket: socket, parent: entry.full ? nil : base.parent, into: pending,
                            connections: request.connections)
                    }
                }
                var disks: [BackupManifest.Disk] = []
                for try await disk in group { disks.append(disk) }
                return disks.sorted { $0.target < $1.target }
            }
            try await BackupRun.libvirtStep { () async throws(LibvirtError) in
                try await domain.endBackupJob(exporting: socket)
            }
            jobEnded = true
            pending.clearJobRecord()
            // After the job: digests need the images only, and a shorter job keeps the scratch files small.
            var digested = copied
            let digests = try await ImageDigests.of(copied.map { pending.folder + "/" + $0.image })
            for index in digested.indices { digested[index].imageDigest = digests[index] }
            return BackupManifest(
                domainName: domain.name, domainUUID: uuid, level: base.parent == nil ? .full : .incremental,
                checkpoint: checkpoint, parent: base.parent?.id, started: started, finished: Date(), disks: digested)
        } catch {
            // Our job ends on every path (libvirt removes its scratch files; a job that failed to begin is not
            // there). If it cannot be ended, the record stays for the next run.
            if !jobEnded, (try? await domain.endBackupJob(exporting: socket)) != nil { pending.clearJobRecord() }
            if Task.isCancelled || (error as? CopyError)?.code == .interrupted {
                throw BackupError(.interrupted, "interrupted; no point was made, and the backup job was ended")
            }
            if let error = error as? CopyError {
                throw BackupError(.copy, error.message, cause: error)
            }
            throw error
        }
    }

    /// Copies one disk from the export into `<point>/<target>.qcow2`: an overlay over the parent point's
    /// image for an incremental, a standalone image otherwise.
    static func copyDisk(
        _ entry: BackupXML.DiskEntry, socket: String, parent: BackupPoint?, into pending: PendingPoint,
        connections: Int
    ) async throws(CopyError) -> BackupManifest.Disk {
        let target = entry.target
        let uri = "nbd+unix:///\(target)?socket=\(socket)"
        let parentImage = parent?.imagePath(for: target)
        let bitmap = parentImage == nil ? nil : "backup-\(target)"
        let image = pending.imagePath(for: target)
        let progress = CopyProgress()
        let (size, backing) = try await NBDBlockSource.withSource(uri: uri, bitmap: bitmap, connections: connections) {
            source throws(CopyError) in
            var backing: QCOW2FileTarget.Backing?
            if let parentImage {
                backing = try await QCOW2FileTarget.Backing.inspect(parentImage, size: source.size, for: image)
            }
            let pipeline = CopyPipeline(
                requestSize: CopyRequest.defaultRequestSize,
                requestsInFlight: CopyRequest.defaultRequestsPerConnection * source.connectionCount)
            try await QCOW2FileTarget.withNewImage(at: image, size: source.size, backing: backing, replacing: false) {
                file throws(CopyError) in
                try await pipeline.run(
                    from: source, to: file, mode: backing == nil ? .full : .incremental, progress: progress)
            }
            return (source.size, backing)
        }
        return BackupManifest.Disk(
            target: target, virtualSize: size, image: PendingPoint.imageName(for: target),
            backingImage: backing?.storedName, bytesCopied: progress.bytesRead)
    }

    /// A new 0700 folder for the NBD socket and scratch images, short enough for a unix socket path.
    static func privateFolder() throws -> String {
        var template = Array("/tmp/pullback-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw BackupError(
                .invalidRequest, "cannot create a private folder in /tmp: \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }
}
