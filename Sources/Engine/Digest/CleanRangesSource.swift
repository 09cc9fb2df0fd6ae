/// A disk's export as a source of its clean ranges only: what the dirty bitmap marks is reported as zeros, so that a
/// full read of it (``ContentDigest/table(of:progress:requestsInFlight:)``) reads and hashes only the blocks an
/// incremental copy would not. `backup --check-source` reads these before the copy, which reads the rest: the disk is
/// read once in all. A block only partly dirty is read whole (a full read widens to whole blocks), so its hash is
/// the disk's; a wholly dirty one is left zero in the table, and is copied anyway.
public final class CleanRangesSource<Inner: BlockSource>: RemappedSource {
    /// The export read.
    public let inner: Inner
    /// The dirty ranges reported.
    private let dirtyRanges = RangeRecord()

    public init(_ inner: Inner) {
        self.inner = inner
    }

    public func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
        let extents = try await inner.extents(in: range)
        dirtyRanges.note(extents.filter(\.isDirty).map { $0.offset..<$0.end })
        // A run of dirty extents has its whole blocks reported as zeros; its ends, in blocks it shares with clean
        // ranges, are read, so that those blocks are hashed whole.
        let blockSize = UInt64(ContentDigest.blockSize)
        var result: [SourceExtent] = []
        var index = 0
        while index < extents.count {
            guard extents[index].isDirty else {
                result.append(extents[index])
                index += 1
                continue
            }
            let runStart = extents[index].offset
            while index + 1 < extents.count, extents[index + 1].isDirty { index += 1 }
            let runEnd = extents[index].end
            index += 1
            let start = min((runStart + blockSize - 1) / blockSize * blockSize, runEnd)
            let end = runEnd == size ? runEnd : max(runEnd / blockSize * blockSize, start)
            for (piece, content) in [
                (runStart..<start, SourceExtent.Content.data), (start..<end, .zero), (end..<runEnd, .data),
            ] where !piece.isEmpty {
                result.append(
                    SourceExtent(
                        offset: piece.lowerBound, length: piece.upperBound - piece.lowerBound, content: content,
                        isDirty: true))
            }
        }
        return result
    }

    /// The blocks wholly inside dirty ranges: those the table leaves zero.
    public var dirtyBlocks: [Range<UInt64>] {
        let blockSize = UInt64(ContentDigest.blockSize)
        return dirtyRanges.merged.compactMap { range in
            let first = (range.lowerBound + blockSize - 1) / blockSize
            let end = range.upperBound == size ? ContentDigest.blockCount(forSize: size) : range.upperBound / blockSize
            return first < end ? first..<end : nil
        }
    }
}
