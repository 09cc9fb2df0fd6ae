import Engine
import Logging
import QCOW2

extension PullBackup.DiskCopies {
    /// Writes the image of disk `target` as a standalone image of the disk `export` serves, its dirty bitmap counting
    /// from point `parent`: what changed since is read from the export, the rest from `layers` (the parent's chain of
    /// the disk, top first, checked against its digests beforehand). A disk grown since reads what lies past the old
    /// end from the export, where QEMU's bitmap says nothing; one that shrank is read from the export in full, with a
    /// note. With a source check and `parentHashes` (the parent point's block hashes), the disk's clean blocks are
    /// read from the export first and those that differ from the parent's are read from the export whatever its
    /// bitmap says.
    func copySynthetic(
        from export: NBDBlockSource, over layers: [QCOW2Chain.ExpectedLayer], parent: String, disk target: String,
        parentHashes: BlockHashTable?, progress: CopyProgress
    ) async throws(CopyError) -> CopiedDisk {
        let earlier = try await QCOW2ChainSource.open(exactly: layers)
        // Each clean cluster is read once: past the page cache, as a restore reads.
        earlier.chain.readOnce()
        let fromExport = { () async throws(CopyError) -> CopiedDisk in
            let summary = try await writeStandalone(target, from: .openExport(export), progress: progress)
            return made(summary, from: export, missed: checkSource ? [] : nil)
        }
        if earlier.size > export.size {
            logger.notice(
                "\(target) shrank from \(earlier.size) to \(export.size) bytes since point \(parent): copying it in full from the disk"
            )
            return try await fromExport()
        }
        if earlier.size < export.size {
            logger.info(
                "\(target) grew from \(earlier.size) to \(export.size) bytes since point \(parent): what lies past the old end is read from the disk"
            )
        }
        var differing: [Range<UInt64>] = []
        var sourceRead: SourceCheckRead?
        if checkSource {
            guard let parentHashes else {
                logger.notice(
                    "\(target): point \(parent) has no block hashes to check against (made by an older build, or damaged): reading it in full from the disk"
                )
                return try await fromExport()
            }
            let read = try await SourceCheckRead.clean(of: export, target: target, logger: logger)
            differing = CheckedSource<NBDBlockSource>.differingRanges(between: read.hashes, and: parentHashes)
            sourceRead = read
        }
        let checked = CheckedSource(
            export, differing: differing, previousEnd: earlier.size < export.size ? earlier.size : nil)
        let layered = LayeredSource(export: checked, earlier: earlier)
        let summary = try await writeStandalone(target, from: .layeredExport(layered), progress: progress)
        var copied = made(summary, from: export, missed: checkSource ? checked.missed : nil)
        copied.sourceRead = sourceRead
        return copied
    }

    /// Writes the image of disk `target` as a standalone image of everything `source` holds, hashing its blocks on
    /// the way.
    private func writeStandalone(
        _ target: String, from source: CopySource, progress: CopyProgress
    ) async throws(CopyError) -> CopySummary {
        let image = pending.imageTarget(target, over: nil, compression: compression).digested().hashingBlocks(over: nil)
        return try await Copy.run(CopyDescription(from: source, to: image, transfer: transfer), progress: progress)
    }

    /// What a synthetic copy from `export` made.
    private func made(_ summary: CopySummary, from export: NBDBlockSource, missed: [Range<UInt64>]?) -> CopiedDisk {
        CopiedDisk(
            size: export.size, backing: nil, digest: summary.imageDigest, retries: export.retries,
            bytesRead: summary.bytesReadFromExport, hashes: summary.blockHashes, missed: missed)
    }
}
