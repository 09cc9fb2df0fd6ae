import Engine
import Foundation
import Libvirt
import Logging
import QCOW2
import Repository

#if canImport(Glibc)
    import Glibc
#endif

/// One pull-mode backup job: begin it, copy every disk from QEMU's NBD export into the pending point,
/// and end it, whatever happens.
enum PullBackup {
    /// Begins the job exporting `prepared`'s chosen disks (incremental from `base`, creating `checkpoint`), copies
    /// them into `pending`, ends the job, and returns the point's manifest and the requests retried per disk.
    static func copy(
        _ prepared: PreparedBackup, base: LevelChoice, checkpoint: String, into pending: PendingPoint,
        logger: Logger
    ) async throws(BackupError) -> (
        manifest: BackupManifest, retries: [String: Int], sourceChecks: [SourceCheckReport]?
    ) {
        let runFolder = try privateFolder()
        defer { RunFolder.remove(runFolder) }
        if prepared.exportHost == nil { try await lend(runFolder, toQemuOf: prepared) }
        // Scratch images live on the hypervisor: in this run's folder when that is this host, else beside the disks
        // unless the caller named a folder there.
        let scratch = prepared.request.scratchDirectory ?? (prepared.exportHost == nil ? runFolder : nil)
        let entries = diskEntries(prepared, base: base, scratch: scratch, pointID: pending.id)
        let domain = prepared.domain
        var jobEnded = false
        var address = ExportAddress.unixSocket(runFolder + "/" + RunFolder.socketName)
        let progress = prepared.request.progress
        do throws(BackupError) {
            progress?.enter(.startingJob)
            let state = try await begin(
                prepared, entries: entries, base: base, checkpoint: checkpoint, on: &address, into: pending,
                logger: logger)
            logger.info(
                "began the backup job: \(entries.map(\.target).joined(separator: ", ")) exported on \(address.uri(of: "")), creating checkpoint \(checkpoint)"
            )
            let copies = DiskCopies(
                address: address, pending: pending, transfer: transfer(for: prepared.request),
                checkSource: prepared.checksSource, compression: prepared.compression, logger: logger)
            let copied: [CopiedDisk]
            do throws(CopyError) {
                copied = try await copyDisks(entries, base: base, with: copies, progress: progress)
            } catch {
                throw failure(error)
            }
            progress?.enter(.endingJob)
            try await RunStep.libvirt { [address] () async throws(LibvirtError) in
                try await domain.endBackupJob(exporting: address)
            }
            jobEnded = true
            pending.clearJobRecord()
            log(copied, logger: logger)
            logger.info("ended the backup job")
            var manifest = try await manifest(
                of: copied, prepared, base: base, checkpoint: checkpoint, into: pending, logger: logger)
            if !state.isEmpty { manifest.state = state }
            progress?.enter(.committing)
            let retries = Dictionary(copied.map { ($0.disk?.target ?? "", $0.retries) }, uniquingKeysWith: +)
            return (manifest, retries, prepared.checksSource ? copied.compactMap(\.sourceCheck) : nil)
        } catch {
            // Our job ends on every path (libvirt removes its scratch files; a job that failed to begin is not
            // there). If it cannot be ended, the record stays for the next run.
            if !jobEnded, (try? await domain.endBackupJob(exporting: address)) != nil { pending.clearJobRecord() }
            throw Task.isCancelled ? interrupted : error
        }
    }

    /// The point's manifest, once its disks are copied: images that could not be hashed as they were written are read
    /// back for their digests, after the job, which needs the image only (and a shorter job keeps the scratch files
    /// small).
    private static func manifest(
        of copied: [CopiedDisk], _ prepared: PreparedBackup, base: LevelChoice, checkpoint: String,
        into pending: PendingPoint, logger: Logger
    ) async throws(BackupError) -> BackupManifest {
        var disks = copied.compactMap(\.disk)
        let unhashed = disks.indices.filter { disks[$0].imageDigest == nil }
        if !unhashed.isEmpty { prepared.request.progress?.enter(.checkingDigests) }
        var images: [(name: String, path: String, like: String?, object: StoredObject?)] = []
        for index in unhashed {
            let object = try RunStep.repository { () throws(RepositoryError) in
                try pending.storedObject(disks[index].image)
            }
            images.append((disks[index].target, pending.folder + "/" + disks[index].image, nil, object))
        }
        let digests = try await ImageDigests.of(images)
        for (index, digest) in zip(unhashed, digests) { disks[index].imageDigest = digest }
        logger.debug(
            "image digests: \(disks.map { "\($0.image) \($0.imageDigest ?? "")" }.joined(separator: ", "))")
        var manifest = BackupManifest(
            domainName: prepared.domain.name, domainUUID: prepared.uuid, level: base.level, checkpoint: checkpoint,
            parent: base.isSynthetic ? nil : base.parent?.id, started: prepared.started, finished: Date(),
            disks: disks)
        if prepared.checksSource { manifest.sourceChecked = true }
        if prepared.compression != .none { manifest.compression = prepared.compression.description }
        if base.isSynthetic {
            // Recorded as prune records the points it merges: the chain it was built from is named.
            manifest.synthetic = true
            manifest.originalParent = base.parent?.id
        }
        return manifest
    }

    /// Says what each disk's copy read, and which needed requests tried again.
    private static func log(_ copied: [CopiedDisk], logger: Logger) {
        for disk in copied.compactMap(\.disk) {
            logger.info("copied \(disk.target): \(disk.bytesCopied) bytes read into \(disk.image)")
        }
        for copy in copied where copy.retries > 0 {
            logger.notice("\(copy.disk?.target ?? ""): \(copy.retries) failed requests were tried again")
        }
    }

    /// How each chosen disk takes part: in full when the base point has no image of it (a disk added since) or it has
    /// no bitmap to say what changed (a raw disk). Scratch images go to `scratch`, or (on a remote hypervisor, whose
    /// folders this host cannot make) beside each disk's image, where libvirt itself would put them; named by domain,
    /// disk and point, since two domains' images may share a folder and be backed up in the same second.
    static func diskEntries(_ prepared: PreparedBackup, base: LevelChoice, scratch: String?, pointID: String)
        -> [BackupXML.DiskEntry]
    {
        let parentDisks = Set(base.parent?.manifest.disks.map(\.target) ?? [])
        let withoutBitmaps = prepared.selection.withoutBitmaps
        return prepared.selection.chosen.map { disk in
            BackupXML.DiskEntry(
                target: disk.target,
                full: !parentDisks.contains(disk.target) || withoutBitmaps.contains(disk.target),
                scratchFile: (scratch ?? disk.sourcePath.map { ($0 as NSString).deletingLastPathComponent })
                    .map { $0 + "/\(prepared.domain.name)-\(disk.target).\(pointID).scratch.qcow2" })
        }
    }

    /// Begins the pull-mode job and saves, beside the images, the domain's XML, the new checkpoint's and the domain's
    /// state files (``DomainStateCapture``), whose manifest entries it returns.
    ///
    /// A local job exports on `address`, the run's socket. A remote one tries each port of the request's range in
    /// turn until QEMU can bind one (another backup of the hypervisor may hold the first), leaving `address` the
    /// port it got. Each attempt is recorded first, so that a kill at any instant after leaves a record the next run
    /// uses; a refused attempt leaves no job to end.
    private static func begin(
        _ prepared: PreparedBackup, entries: [BackupXML.DiskEntry], base: LevelChoice, checkpoint: String,
        on address: inout ExportAddress, into pending: PendingPoint, logger: Logger
    ) async throws(BackupError) -> [DomainStateFile] {
        let skipped = prepared.selection.skipped.map(\.target)
        // A disk without bitmaps (raw) is exported but left out of the checkpoint: only qcow2 images hold bitmaps.
        let withoutBitmaps = prepared.selection.withoutBitmaps
        let checkpointXML = BackupXML.checkpoint(
            name: checkpoint,
            description: CheckpointDescription.text(for: checkpoint, repository: prepared.request.repository),
            disks: entries.map(\.target).filter { !withoutBitmaps.contains($0) },
            skipped: skipped + entries.map(\.target).filter { withoutBitmaps.contains($0) })
        let domain = prepared.domain
        let export = prepared.request.remoteExport
        var ports = export.ports.makeIterator()
        while true {
            if let host = prepared.exportHost {
                guard let port = ports.next() else { preconditionFailure("a port range is never empty") }
                address = .tcp(host: host, port: port, certificates: export.insecure ? nil : export.certificates)
                let record = JobRecord(
                    exportHost: host, port: port, checkpoint: checkpoint, startedDomain: prepared.startedDomain)
                try RunStep.repository { () throws(RepositoryError) in try pending.recordJob(record) }
            } else if case .unixSocket(let socket) = address {
                let record = JobRecord(
                    exportSocket: socket, checkpoint: checkpoint, startedDomain: prepared.startedDomain)
                try RunStep.repository { () throws(RepositoryError) in try pending.recordJob(record) }
            }
            let backupXML = BackupXML.backup(
                incrementalFrom: base.parent?.manifest.checkpoint, server: address.serverXML, disks: entries,
                skipped: skipped)
            do {
                try await domain.beginBackup(backupXML: backupXML, checkpointXML: checkpointXML)
                break
            } catch  where prepared.exportHost != nil && error.isAddressInUse {
                guard case .tcp(let host, let port, _) = address, port < export.ports.upperBound else {
                    throw BackupError(
                        .libvirt,
                        "no port from \(export.ports.lowerBound) to \(export.ports.upperBound) is free on \(prepared.exportHost ?? ""): \(error.message); give others with --nbd-ports FIRST-LAST",
                        cause: error)
                }
                pending.clearJobRecord()
                logger.info("port \(port) on \(host) is taken; trying the next")
            } catch {
                throw BackupError(.libvirt, error.message, cause: error)
            }
        }
        try RunStep.repository { () throws(RepositoryError) in
            try pending.write(prepared.domainXML, to: "domain.xml")
        }
        let savedCheckpoint = try await RunStep.libvirt { () async throws(LibvirtError) in
            try await domain.checkpoint(named: checkpoint).xmlDescription()
        }
        try RunStep.repository { () throws(RepositoryError) in
            try pending.write(savedCheckpoint, to: "checkpoint.xml")
        }
        return try await DomainStateCapture.keep(prepared, into: pending, logger: logger)
    }

    /// How the disks' data moves: the request's connections, retries and stall timeout, each disk mapped first when
    /// the request shows progress, and one pool of buffers for all the disks.
    private static func transfer(for request: BackupRequest) -> TransferOptions {
        var transfer = TransferOptions(connections: request.connections)
        (transfer.retry, transfer.stallTimeout) = (request.retry, request.stallTimeout)
        transfer.measureTotal = request.progress != nil
        transfer.rateLimiter = request.rateLimiter
        return transfer.reading(into: transfer.sharedBuffers())
    }

    /// Copies every disk of the export at once, each a part of the request's progress; the manifest's disks, sorted
    /// by target.
    private static func copyDisks(
        _ entries: [BackupXML.DiskEntry], base: LevelChoice, with copies: DiskCopies, progress: JobProgress?
    ) async throws(CopyError) -> [CopiedDisk] {
        progress?.expect(parts: entries.count)
        do {
            return try await withThrowingTaskGroup(of: CopiedDisk.self) { group in
                for entry in entries {
                    let disk = DiskCopies.Disk(
                        entry: entry, parent: entry.full ? nil : base.parent,
                        repositoryLayers: base.isSynthetic ? base.repositoryLayers?[entry.target] ?? [] : nil)
                    group.addTask {
                        let counters = progress?.start(entry.target) ?? CopyProgress()
                        defer { progress?.finish(counters) }
                        return try await copies.copyDisk(disk, progress: counters)
                    }
                }
                var disks: [CopiedDisk] = []
                for try await disk in group { disks.append(disk) }
                return disks.sorted { ($0.disk?.target ?? "") < ($1.disk?.target ?? "") }
            }
        } catch let error as CopyError {
            throw error
        } catch {
            throw CopyError(.source, "\(error)")
        }
    }

    /// The error a job whose copy failed reports: an interruption as such, whatever failed first because of it.
    private static func failure(_ error: CopyError) -> BackupError {
        if Task.isCancelled || error.code == .interrupted { return interrupted }
        return BackupError(.copy, error.message, cause: error)
    }

    private static var interrupted: BackupError {
        BackupError(.interrupted, "interrupted; no point was made, and the backup job was ended")
    }

    /// Makes the run's folder QEMU's own (still 0700) when the domain's QEMU runs as another user (the DAC label of
    /// its live XML, `libvirt-qemu` on Debian): QEMU creates the export's socket in it and opens the scratch images
    /// there, and could not even enter a folder of ours. Root reaches it all the same; no one else does.
    static func lend(_ folder: String, toQemuOf prepared: PreparedBackup) async throws(BackupError) {
        guard let xml = try? await prepared.domain.xmlDescription(),
            let owner = QemuProcessOwner(runningDomainXML: xml), owner.uid != geteuid()
        else { return }
        if chown(folder, owner.uid, owner.gid) != 0 {
            let reason = String(cString: strerror(errno))
            throw BackupError(
                .invalidRequest,
                "cannot give QEMU's user \(owner.uid):\(owner.gid) the folder \(folder) for the export's socket and scratch images: \(reason); run as root, or name a folder QEMU can write with --scratch-dir"
            )
        }
    }

    /// A new 0700 folder for the NBD socket and scratch images, short enough for a unix socket path.
    static func privateFolder() throws(BackupError) -> String {
        do throws(RepositoryError) { return try RunFolder.make() } catch {
            throw BackupError(.invalidRequest, error.message)
        }
    }
}
