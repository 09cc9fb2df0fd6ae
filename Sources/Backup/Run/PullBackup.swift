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
    ) async throws -> (manifest: BackupManifest, retries: [String: Int], sourceChecks: [SourceCheckReport]?) {
        let runFolder = try privateFolder()
        defer { RunFolder.remove(runFolder) }
        // Scratch images live on the hypervisor: in this run's folder when that is this host, else beside the disks
        // unless the caller named a folder there.
        let scratch = prepared.request.scratchDirectory ?? (prepared.exportHost == nil ? runFolder : nil)
        let entries = diskEntries(prepared, base: base, scratch: scratch, pointID: pending.id)
        let domain = prepared.domain
        var jobEnded = false
        var address = ExportAddress.unixSocket(runFolder + "/" + RunFolder.socketName)
        let progress = prepared.request.progress
        do {
            progress?.enter(.startingJob)
            try await begin(
                prepared, entries: entries, base: base, checkpoint: checkpoint, on: &address, into: pending,
                logger: logger)
            logger.info(
                "began the backup job: \(entries.map(\.target).joined(separator: ", ")) exported on \(address.uri(of: "")), creating checkpoint \(checkpoint)"
            )
            let copied = try await copyDisks(
                entries, address: address, base: base, into: pending, request: prepared.request,
                checkSource: prepared.checksSource, logger: logger)
            progress?.enter(.endingJob)
            try await RunStep.libvirt { [address] () async throws(LibvirtError) in
                try await domain.endBackupJob(exporting: address)
            }
            jobEnded = true
            pending.clearJobRecord()
            for disk in copied.compactMap(\.disk) {
                logger.info("copied \(disk.target): \(disk.bytesCopied) bytes read into \(disk.image)")
            }
            for copy in copied where copy.retries > 0 {
                logger.notice("\(copy.disk?.target ?? ""): \(copy.retries) failed requests were tried again")
            }
            logger.info("ended the backup job")
            // Images are hashed as they are written; one that could not be is read back, after the job: that needs
            // the image only, and a shorter job keeps the scratch files small.
            var disks = copied.compactMap(\.disk)
            let unhashed = disks.indices.filter { disks[$0].imageDigest == nil }
            if !unhashed.isEmpty { progress?.enter(.checkingDigests) }
            let digests = try await ImageDigests.of(
                unhashed.map { (name: disks[$0].target, path: pending.folder + "/" + disks[$0].image, like: nil) })
            for (index, digest) in zip(unhashed, digests) { disks[index].imageDigest = digest }
            logger.debug(
                "image digests: \(disks.map { "\($0.image) \($0.imageDigest ?? "")" }.joined(separator: ", "))")
            var manifest = BackupManifest(
                domainName: domain.name, domainUUID: prepared.uuid, level: base.level, checkpoint: checkpoint,
                parent: base.isSynthetic ? nil : base.parent?.id, started: prepared.started, finished: Date(),
                disks: disks)
            if prepared.checksSource { manifest.sourceChecked = true }
            if base.isSynthetic {
                // Recorded as prune records the points it merges: the chain it was built from is named.
                manifest.synthetic = true
                manifest.originalParent = base.parent?.id
            }
            progress?.enter(.committing)
            let retries = Dictionary(copied.map { ($0.disk?.target ?? "", $0.retries) }, uniquingKeysWith: +)
            return (manifest, retries, prepared.checksSource ? copied.compactMap(\.sourceCheck) : nil)
        } catch {
            // Our job ends on every path (libvirt removes its scratch files; a job that failed to begin is not
            // there). If it cannot be ended, the record stays for the next run.
            if !jobEnded, (try? await domain.endBackupJob(exporting: address)) != nil { pending.clearJobRecord() }
            throw failure(error)
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

    /// Begins the pull-mode job and saves, beside the images, the domain's XML and the new checkpoint's.
    ///
    /// A local job exports on `address`, the run's socket. A remote one tries each port of the request's range in
    /// turn until QEMU can bind one (another backup of the hypervisor may hold the first), leaving `address` the
    /// port it got. Each attempt is recorded first, so that a kill at any instant after leaves a record the next run
    /// uses; a refused attempt leaves no job to end.
    private static func begin(
        _ prepared: PreparedBackup, entries: [BackupXML.DiskEntry], base: LevelChoice, checkpoint: String,
        on address: inout ExportAddress, into pending: PendingPoint, logger: Logger
    ) async throws {
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
                try pending.recordJob(
                    JobRecord(
                        exportHost: host, port: port, checkpoint: checkpoint, startedDomain: prepared.startedDomain))
            } else if case .unixSocket(let socket) = address {
                try pending.recordJob(
                    JobRecord(exportSocket: socket, checkpoint: checkpoint, startedDomain: prepared.startedDomain))
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
        try pending.write(prepared.domainXML, to: "domain.xml")
        let savedCheckpoint = try await RunStep.libvirt { () async throws(LibvirtError) in
            try await domain.checkpoint(named: checkpoint).xmlDescription()
        }
        try pending.write(savedCheckpoint, to: "checkpoint.xml")
    }

    /// Copies every disk of the export at once, each a part of the request's progress; the manifest's disks, sorted
    /// by target.
    private static func copyDisks(
        _ entries: [BackupXML.DiskEntry], address: ExportAddress, base: LevelChoice, into pending: PendingPoint,
        request: BackupRequest, checkSource: Bool, logger: Logger
    ) async throws -> [CopiedDisk] {
        let (connections, progress) = (request.connections, request.progress)
        let (retry, stallTimeout) = (request.retry, request.stallTimeout)
        progress?.expect(parts: entries.count)
        // One pool for all the disks: memory stays that of one disk's copy however many the domain has.
        let buffers = BufferPool(
            count: CopyRequest.defaultRequestsPerConnection * connections, bufferSize: CopyRequest.defaultRequestSize)
        return try await withThrowingTaskGroup(of: CopiedDisk.self) { group in
            for entry in entries {
                group.addTask {
                    let counters = progress?.start(entry.target) ?? CopyProgress()
                    defer { progress?.finish(counters) }
                    return try await copyDisk(
                        entry, address: address, parent: entry.full ? nil : base.parent,
                        repositoryLayers: base.isSynthetic ? base.repositoryLayers?[entry.target] ?? [] : nil,
                        into: pending,
                        connections: connections, retry: retry, stallTimeout: stallTimeout, buffers: buffers,
                        progress: counters, measureTotal: progress != nil, checkSource: checkSource, logger: logger)
                }
            }
            var disks: [CopiedDisk] = []
            for try await disk in group { disks.append(disk) }
            return disks.sorted { ($0.disk?.target ?? "") < ($1.disk?.target ?? "") }
        }
    }

    /// The error a failed job reports: an interruption as such, whatever failed first because of it.
    private static func failure(_ error: any Error) -> any Error {
        if Task.isCancelled || (error as? CopyError)?.code == .interrupted {
            return BackupError(.interrupted, "interrupted; no point was made, and the backup job was ended")
        }
        if let error = error as? CopyError { return BackupError(.copy, error.message, cause: error) }
        return error
    }

    /// Copies one disk from the export into `<point>/<target>.qcow2`: an overlay over the parent point's
    /// image for an incremental, a standalone image otherwise, reading into `buffers`. With `measureTotal` the export
    /// is mapped first, for `progress`'s total.
    ///
    /// A disk resized since the parent point: grown, its overlay is larger than the parent's image and what lies past
    /// the old end is copied as in a full copy; shrunk, it starts a new chain with a standalone image (an overlay
    /// cannot cut its backing short), and `logger` gets a note.
    ///
    /// With `repositoryLayers` (a synthetic full), the image is a standalone one built from those images of the
    /// parent's chain and the export's dirty ranges (``copySynthetic(from:over:parent:target:to:pipeline:progress:logger:)``);
    /// an empty list, or no parent, copies the disk in full.
    static func copyDisk(
        _ entry: BackupXML.DiskEntry, address: ExportAddress, parent: BackupPoint?,
        repositoryLayers: [QCOW2Chain.ExpectedLayer]?, into pending: PendingPoint, connections: Int,
        retry: RetryPolicy, stallTimeout: Duration?, buffers: BufferPool, progress: CopyProgress, measureTotal: Bool,
        checkSource: Bool, logger: Logger
    ) async throws(CopyError) -> CopiedDisk {
        let target = entry.target
        let uri = address.uri(of: target)
        let layers = parent == nil ? nil : repositoryLayers.flatMap { $0.isEmpty ? nil : $0 }
        let parentImage = repositoryLayers == nil ? parent?.imagePath(for: target) : nil
        let bitmap = parentImage == nil && layers == nil ? nil : "backup-\(target)"
        let image = pending.imagePath(for: target)
        // An incremental's content digest is built on its parent's block hashes; without them it has none.
        var parentHashes: BlockHashTable?
        if parentImage != nil || layers != nil, let parent {
            parentHashes = await PointBlockHashes.table(of: parent, target: target, logger: logger)
        }
        var copied = try await NBDBlockSource.withSource(
            uri: uri, bitmap: bitmap, connections: connections, retry: retry, stallTimeout: stallTimeout
        ) { source throws(CopyError) -> CopiedDisk in
            let pipeline = CopyPipeline(
                requestSize: CopyRequest.defaultRequestSize,
                requestsInFlight: CopyRequest.defaultRequestsPerConnection * source.connectionCount,
                measureTotal: measureTotal, buffers: buffers)
            if let layers, let parent {
                let written = try await copySynthetic(
                    from: source, over: layers, parent: parent.id, target: target, to: image, pipeline: pipeline,
                    parentHashes: parentHashes, checkSource: checkSource, progress: progress, logger: logger)
                return CopiedDisk(
                    size: source.size, backing: nil, digest: written.digest, retries: source.retries,
                    bytesRead: written.bytesRead, hashes: written.hashes, missed: written.missed,
                    sourceRead: written.sourceRead)
            }
            var backing: QCOW2FileTarget.Backing?
            if let parentImage, let parent {
                let previous = try await QCOW2FileTarget.Backing.open(parentImage, for: image)
                if previous.isLarger(than: source.size) {
                    logger.notice(
                        "\(target) shrank from \(previous.virtualSize) to \(source.size) bytes since point \(parent.id): copying it in full, which starts a new chain for it"
                    )
                } else if checkSource, parentHashes == nil {
                    logger.notice(
                        "\(target): point \(parent.id) has no block hashes to check against (made by an older build, or damaged): copying it in full, which starts a new chain for it"
                    )
                } else {
                    if previous.virtualSize < source.size {
                        logger.info(
                            "\(target) grew from \(previous.virtualSize) to \(source.size) bytes since point \(parent.id): what lies past the old end is copied in full"
                        )
                    }
                    backing = previous
                }
            }
            // With a check, the blocks where the disk differs from the parent are copied whatever the bitmap says. A full
            // copy reads the whole disk already: there is nothing more to read.
            var sourceRead: SourceCheckRead?
            var differing: [Range<UInt64>] = []
            if checkSource, backing != nil, let parentHashes {
                let read = try await SourceCheckRead.clean(of: source, target: target, logger: logger)
                differing = CheckedSource<NBDBlockSource>.differingRanges(between: read.hashes, and: parentHashes)
                sourceRead = read
            }
            let checked = CheckedSource(
                source, differing: differing,
                previousEnd: backing.flatMap { $0.virtualSize < source.size ? $0.virtualSize : nil })
            let written = try await QCOW2FileTarget.withNewDigestedImage(
                at: image, size: source.size, backing: backing, replacing: false
            ) { file throws(CopyError) -> BlockHashTable? in
                let hashed = HashingTarget(file, size: source.size, base: backing == nil ? nil : parentHashes)
                try await pipeline.run(
                    from: checked, to: hashed, mode: backing == nil ? .full : .incremental, progress: progress)
                return backing != nil && parentHashes == nil ? nil : hashed.table()
            }
            return CopiedDisk(
                size: source.size, backing: backing, digest: written.digest, retries: source.retries,
                bytesRead: progress.bytesRead, hashes: written.result, missed: checkSource ? checked.missed : nil,
                sourceRead: sourceRead)
        }
        if let read = copied.sourceRead {
            try read.requireEqual(copied.hashes, target: target)
        }
        var disk = BackupManifest.Disk(
            target: target, virtualSize: copied.size, image: PendingPoint.imageName(for: target),
            backingImage: copied.backing?.storedName, bytesCopied: copied.bytesRead,
            imageDigest: copied.digest.map {
                ImageDigest.recorded(headLength: $0.headLength, head: $0.head, tail: $0.tail, piecewise: $0.piecewise)
            })
        if let hashes = copied.hashes {
            (disk.contentDigest, disk.blockHashes) = try await PointBlockHashes.write(hashes, of: target, into: pending)
        }
        copied.disk = disk
        return copied
    }

    /// A new 0700 folder for the NBD socket and scratch images, short enough for a unix socket path.
    static func privateFolder() throws -> String {
        do throws(RepositoryError) { return try RunFolder.make() } catch {
            throw BackupError(.invalidRequest, error.message)
        }
    }
}
