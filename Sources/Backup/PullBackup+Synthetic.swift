import Engine
import Logging
import QCOW2

extension PullBackup {
    /// Writes `image` as a standalone image of the disk `export` serves, its dirty bitmap counting from point
    /// `parent`: what changed since is read from the export, the rest from `layers` (the parent's chain of the disk,
    /// top first, checked against its digests beforehand). A disk grown since reads what lies past the old end from
    /// the export, where QEMU's bitmap says nothing; one that shrank is read from the export in full, with a note.
    /// With `hashes.source` (the disk read in full by a source check) and `hashes.parent` (the parent point's block
    /// hashes), the blocks where they differ are read from the export whatever its bitmap says. Returns the image's
    /// digest (nil when it must be read back), the bytes read from the export, the disk's block hashes, and with a
    /// check, the ranges the bitmap missed.
    static func copySynthetic(
        from export: NBDBlockSource, over layers: [QCOW2Chain.ExpectedLayer], parent: String, target: String,
        to image: String, pipeline: CopyPipeline, hashes: (parent: BlockHashTable?, source: BlockHashTable?),
        progress: CopyProgress, logger: Logger
    ) async throws(CopyError) -> (
        digest: SplitDigest?, bytesRead: UInt64, hashes: BlockHashTable?, missed: [Range<UInt64>]?
    ) {
        let earlier = try await QCOW2ChainSource.open(exactly: layers)
        // Each clean cluster is read once: past the page cache, as a restore reads.
        earlier.chain.readOnce()
        if earlier.size > export.size {
            logger.notice(
                "\(target) shrank from \(earlier.size) to \(export.size) bytes since point \(parent): copying it in full from the disk"
            )
            let written = try await writeFull(image, from: export, pipeline: pipeline, progress: progress)
            return (written.digest, progress.bytesRead, written.hashes, hashes.source == nil ? nil : [])
        }
        if earlier.size < export.size {
            logger.info(
                "\(target) grew from \(earlier.size) to \(export.size) bytes since point \(parent): what lies past the old end is read from the disk"
            )
        }
        var differing: [Range<UInt64>] = []
        if let source = hashes.source {
            guard let parentHashes = hashes.parent else {
                logger.notice(
                    "\(target): point \(parent) has no block hashes to check against (made by an older build, or damaged): reading it in full from the disk"
                )
                let written = try await writeFull(image, from: export, pipeline: pipeline, progress: progress)
                return (written.digest, progress.bytesRead, written.hashes, [])
            }
            differing = CheckedSource<NBDBlockSource>.differingRanges(between: source, and: parentHashes)
        }
        let checked = CheckedSource(
            export, differing: differing, previousEnd: earlier.size < export.size ? earlier.size : nil)
        let layered = LayeredSource(export: checked, earlier: earlier)
        let written = try await writeFull(image, from: layered, pipeline: pipeline, progress: progress)
        return (
            written.digest, layered.bytesReadFromExport, written.hashes, hashes.source == nil ? nil : checked.missed
        )
    }

    /// Writes `image` as a standalone image of everything `source` holds, hashing its blocks on the way.
    private static func writeFull(
        _ image: String, from source: some BlockSource, pipeline: CopyPipeline, progress: CopyProgress
    ) async throws(CopyError) -> (digest: SplitDigest?, hashes: BlockHashTable?) {
        let written = try await QCOW2FileTarget.withNewDigestedImage(
            at: image, size: source.size, backing: nil, replacing: false
        ) { file throws(CopyError) -> BlockHashTable? in
            let hashed = HashingTarget(file, size: source.size, base: nil)
            try await pipeline.run(from: source, to: hashed, mode: .full, progress: progress)
            return hashed.table()
        }
        return (written.digest, written.result)
    }
}
