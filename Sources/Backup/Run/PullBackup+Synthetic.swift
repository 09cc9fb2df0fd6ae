import Engine
import Logging
import QCOW2

extension PullBackup {
    /// Writes `image` as a standalone image of the disk `export` serves, its dirty bitmap counting from point
    /// `parent`: what changed since is read from the export, the rest from `layers` (the parent's chain of the disk,
    /// top first, checked against its digests beforehand). A disk grown since reads what lies past the old end from
    /// the export, where QEMU's bitmap says nothing; one that shrank is read from the export in full, with a note.
    /// With `checkSource` and `parentHashes` (the parent point's block hashes), the disk's clean blocks are read from
    /// the export first and those that differ from the parent's are read from the export whatever its bitmap says.
    /// Returns the image's digest (nil when it must be read back), the bytes read from the export, the disk's block
    /// hashes, and with a check, the ranges the bitmap missed and what the check read.
    static func copySynthetic(
        from export: NBDBlockSource, over layers: [QCOW2Chain.ExpectedLayer], parent: String, target: String,
        to image: String, pipeline: CopyPipeline, parentHashes: BlockHashTable?, checkSource: Bool,
        progress: CopyProgress, logger: Logger
    ) async throws(CopyError) -> SyntheticCopy {
        let earlier = try await QCOW2ChainSource.open(exactly: layers)
        // Each clean cluster is read once: past the page cache, as a restore reads.
        earlier.chain.readOnce()
        let fromExport = { () async throws(CopyError) -> SyntheticCopy in
            let written = try await writeFull(image, from: export, pipeline: pipeline, progress: progress)
            return SyntheticCopy(
                digest: written.digest, bytesRead: progress.bytesRead, hashes: written.hashes,
                missed: checkSource ? [] : nil)
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
        let written = try await writeFull(image, from: layered, pipeline: pipeline, progress: progress)
        return SyntheticCopy(
            digest: written.digest, bytesRead: layered.bytesReadFromExport, hashes: written.hashes,
            missed: checkSource ? checked.missed : nil, sourceRead: sourceRead)
    }

    /// What ``copySynthetic(from:over:parent:target:to:pipeline:parentHashes:checkSource:progress:logger:)`` made.
    struct SyntheticCopy: Sendable {
        var digest: SplitDigest?
        var bytesRead: UInt64
        var hashes: BlockHashTable?
        var missed: [Range<UInt64>]?
        var sourceRead: SourceCheckRead?
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
