import Engine
import Logging

/// What `backup --check-source` reads of a disk before an incremental copy: the block hashes of every block its
/// dirty bitmap leaves clean (``Engine/CleanRangesSource``), which the copy reads none of. Together they read the disk
/// once.
struct SourceCheckRead: Sendable {
    /// The disk's block hashes, zero where a block is wholly dirty.
    var hashes: BlockHashTable
    /// The blocks wholly dirty, which the copy reads.
    var dirtyBlocks: [Range<UInt64>]

    /// Reads the clean blocks of `source`, the export of disk `target`.
    static func clean(of source: some BlockSource, target: String, logger: Logger) async throws(CopyError)
        -> SourceCheckRead
    {
        logger.info("\(target): reading what the bitmap says is unchanged, to check the point against the disk")
        let clean = CleanRangesSource(source)
        let hashes = try await ContentDigest.table(of: clean)
        return SourceCheckRead(hashes: hashes, dirtyBlocks: clean.dirtyBlocks)
    }

    /// Throws unless `point`, the new point's block hashes, equals the disk's wherever the check read it: the point is
    /// then proven equal to the disk, whatever the bitmap said (the wholly dirty blocks were copied from it).
    func requireEqual(_ point: BlockHashTable?, target: String) throws(CopyError) {
        guard let point else {
            throw CopyError(.source, "\(target): the point's content cannot be checked against the disk")
        }
        let blockSize = UInt64(ContentDigest.blockSize)
        var dirty = dirtyBlocks.makeIterator()
        var current = dirty.next()
        var left: [UInt64] = []
        for block in hashes.differingBlocks(from: point) {
            while let range = current, range.upperBound <= block { current = dirty.next() }
            if let range = current, range.contains(block) { continue }
            left.append(block)
        }
        guard left.isEmpty else {
            throw CopyError(
                .source,
                "\(target): after the check the point still differs from the disk in \(left.count) blocks (first at byte \(left[0] * blockSize)); no point was made"
            )
        }
    }
}
