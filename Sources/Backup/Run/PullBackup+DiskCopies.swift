import Engine
import Logging
import QCOW2
import Repository

extension PullBackup {
    /// What the copies of one backup job's disks share, and the copy of each disk from QEMU's NBD export into
    /// `<point>/<target>.qcow2`.
    struct DiskCopies: Sendable {
        /// Where the job exports the disks.
        var address: ExportAddress
        /// The point the images go into.
        var pending: PendingPoint
        /// How every disk's data moves: the request's connections, retries and stall timeout, and one pool of buffers
        /// for all the disks, so that memory stays that of one disk's copy however many the domain has.
        var transfer: TransferOptions
        /// Whether each incremental is checked against the whole disk (`--check-source`).
        var checkSource: Bool
        /// How the images' clusters are stored.
        var compression: ClusterCompression
        var logger: Logger

        /// One disk of the job: its entry, the point it is based on (nil for a full copy), and for a synthetic full the
        /// images of the parent's chain of the disk, top first (empty: the disk is copied in full).
        struct Disk: Sendable {
            var entry: BackupXML.DiskEntry
            var parent: BackupPoint?
            var repositoryLayers: [QCOW2Chain.ExpectedLayer]?
        }

        /// Copies `disk` from the export: an overlay over the parent point's image for an incremental, a standalone
        /// image otherwise, counting into `progress`; then writes its block hashes and makes its manifest entry.
        ///
        /// A disk resized since the parent point: grown, its overlay is larger than the parent's image and what lies
        /// past the old end is copied as in a full copy; shrunk, it starts a new chain with a standalone image (an
        /// overlay cannot cut its backing short), and the logger gets a note.
        ///
        /// With repository layers (a synthetic full), the image is a standalone one built from those images and the
        /// export's dirty ranges (``copySynthetic(from:over:parent:disk:parentHashes:progress:)``); an empty list, or no
        /// parent, copies the disk in full.
        func copyDisk(_ disk: Disk, progress: CopyProgress) async throws(CopyError) -> CopiedDisk {
            let target = disk.entry.target
            let layers = disk.parent == nil ? nil : disk.repositoryLayers.flatMap { $0.isEmpty ? nil : $0 }
            let parentImage = disk.repositoryLayers == nil ? disk.parent?.imagePath(for: target) : nil
            let bitmap = parentImage == nil && layers == nil ? nil : "backup-\(target)"
            // An incremental's content digest is built on its parent's block hashes; without them it has none.
            var parentHashes: BlockHashTable?
            if parentImage != nil || layers != nil, let parent = disk.parent {
                parentHashes = await PointBlockHashes.table(of: parent, target: target, logger: logger)
            }
            var copied = try await NBDBlockSource.withSource(
                uri: address.uri(of: target), bitmap: bitmap, transfer: transfer
            ) { export throws(CopyError) -> CopiedDisk in
                if let layers, let parent = disk.parent {
                    return try await copySynthetic(
                        from: export, over: layers, parent: parent.id, disk: target, parentHashes: parentHashes,
                        progress: progress)
                }
                let parent = parentImage.flatMap { image in disk.parent.map { (image: image, point: $0) } }
                return try await copy(
                    from: export, over: parent, disk: target, parentHashes: parentHashes, progress: progress)
            }
            if let read = copied.sourceRead {
                try read.requireEqual(copied.hashes, target: target)
            }
            copied.disk = try await manifestEntry(of: copied, target: target)
            return copied
        }

        /// Copies the export of disk `target` into its image: an overlay over `parent`'s image unless the disk shrank
        /// since (or a check lacks the parent's block hashes), a standalone image otherwise.
        private func copy(
            from export: NBDBlockSource, over parent: (image: String, point: BackupPoint)?, disk target: String,
            parentHashes: BlockHashTable?, progress: CopyProgress
        ) async throws(CopyError) -> CopiedDisk {
            let image = pending.imagePath(for: target)
            var backing: QCOW2FileTarget.Backing?
            if let parent {
                backing = try await self.backing(
                    parent.image, of: parent.point, for: image, export: export, disk: target,
                    hasHashes: parentHashes != nil)
            }
            // With a check, the blocks where the disk differs from the parent are copied whatever the bitmap says. A
            // full copy reads the whole disk already: there is nothing more to read.
            var sourceRead: SourceCheckRead?
            var differing: [Range<UInt64>] = []
            if checkSource, backing != nil, let parentHashes {
                let read = try await SourceCheckRead.clean(of: export, target: target, logger: logger)
                differing = CheckedSource<NBDBlockSource>.differingRanges(between: read.hashes, and: parentHashes)
                sourceRead = read
            }
            let checked = CheckedSource(
                export, differing: differing,
                previousEnd: backing.flatMap { $0.virtualSize < export.size ? $0.virtualSize : nil })
            let newImage = pending.imageTarget(target, over: backing, compression: compression)
            let copy = CopyDescription(
                from: .checkedExport(checked), to: newImage.digested().hashingBlocks(over: parentHashes),
                transfer: transfer)
            let summary = try await Copy.run(copy, progress: progress)
            return CopiedDisk(
                size: export.size, backing: backing, digest: summary.imageDigest, retries: export.retries,
                bytesRead: summary.bytesReadFromExport, hashes: summary.blockHashes,
                missed: checkSource ? checked.missed : nil, sourceRead: sourceRead)
        }

        /// The parent's image `parentImage` as the backing of the new overlay `image`, or nil (with a note) when the
        /// disk must be copied in full: it shrank since point `parent`, or a check has no block hashes to check
        /// against.
        private func backing(
            _ parentImage: String, of parentPoint: BackupPoint, for image: String, export: NBDBlockSource,
            disk target: String,
            hasHashes: Bool
        ) async throws(CopyError) -> QCOW2FileTarget.Backing? {
            let parent = parentPoint.id
            let previous =
                pending.imagesAreFiles
                ? try await QCOW2FileTarget.Backing.open(parentImage, for: image)
                : try await QCOW2FileTarget.Backing.repositoryImage(of: target, at: parentPoint)
            if previous.isLarger(than: export.size) {
                logger.notice(
                    "\(target) shrank from \(previous.virtualSize) to \(export.size) bytes since point \(parent): copying it in full, which starts a new chain for it"
                )
                return nil
            }
            if checkSource, !hasHashes {
                logger.notice(
                    "\(target): point \(parent) has no block hashes to check against (made by an older build, or damaged): copying it in full, which starts a new chain for it"
                )
                return nil
            }
            if previous.virtualSize < export.size {
                logger.info(
                    "\(target) grew from \(previous.virtualSize) to \(export.size) bytes since point \(parent): what lies past the old end is copied in full"
                )
            }
            return previous
        }

        /// The manifest's entry of the disk `copied` made, its block hashes written beside the image.
        private func manifestEntry(of copied: CopiedDisk, target: String) async throws(CopyError)
            -> BackupManifest.Disk
        {
            var disk = BackupManifest.Disk(
                target: target, virtualSize: copied.size, image: PendingPoint.imageName(for: target),
                backingImage: copied.backing?.storedName, bytesCopied: copied.bytesRead,
                imageDigest: copied.digest.map {
                    ImageDigest.recorded(
                        headLength: $0.headLength, head: $0.head, tail: $0.tail, piecewise: $0.piecewise)
                })
            if let hashes = copied.hashes {
                (disk.contentDigest, disk.blockHashes) = try await PointBlockHashes.write(
                    hashes, of: target, into: pending)
            }
            return disk
        }
    }
}
