/// A source whose map also marks as changed the ranges where a check found the disk differing from the previous
/// point, so that an incremental copy takes them whatever the dirty bitmap says, and that counts what the bitmap
/// missed.
///
/// `backup --check-source` reads the clean part of the export first (``CleanRangesSource``), compares its block
/// hashes with the parent point's (``differingRanges(between:and:)``), and copies through this.
public final class CheckedSource<Inner: BlockSource>: RemappedSource {
    /// The export read.
    public let inner: Inner
    /// Sorted, disjoint byte ranges to copy.
    private let differing: [Range<UInt64>]
    /// Where the previous point ends when the disk grew since: what lies past it is copied in full anyway, and QEMU's
    /// bitmap never marks it, so it is not counted as missed.
    private let previousEnd: UInt64?
    /// The ranges marked that the bitmap did not mark.
    private let missedRanges = RangeRecord()

    public init(_ inner: Inner, differing: [Range<UInt64>], previousEnd: UInt64?) {
        self.inner = inner
        self.differing = differing
        self.previousEnd = previousEnd
    }

    public func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
        var result: [SourceExtent] = []
        var missed: [Range<UInt64>] = []
        let extents = try await inner.extents(in: range)
        let blockSize = UInt64(ContentDigest.blockSize)
        // Blocks the bitmap marks in part (a granularity finer than a block) or that hold a grown disk's old end: the
        // copy takes them whole anyway, and their difference may be the marked part's or the new part's alone, so
        // none of their bytes is counted as missed.
        var touched = Set<UInt64>()
        for extent in extents where extent.isDirty && extent.length > 0 {
            touched.insert(extent.offset / blockSize)
            touched.insert((extent.end - 1) / blockSize)
        }
        if let previousEnd, previousEnd % blockSize != 0 { touched.insert(previousEnd / blockSize) }
        func counted(_ range: Range<UInt64>) -> [Range<UInt64>] {
            var pieces: [Range<UInt64>] = []
            var start = range.lowerBound
            while start < range.upperBound {
                let block = start / blockSize
                let end = min((block + 1) * blockSize, range.upperBound)
                if !touched.contains(block) {
                    if let last = pieces.last, last.upperBound == start {
                        pieces[pieces.count - 1] = last.lowerBound..<end
                    } else {
                        pieces.append(start..<end)
                    }
                }
                start = end
            }
            return pieces
        }
        for extent in extents {
            guard !extent.isDirty else {
                result.append(extent)
                continue
            }
            var position = extent.offset
            for marked in overlapping(extent.offset..<extent.end) {
                let start = max(marked.lowerBound, position)
                let end = min(marked.upperBound, extent.end)
                if start > position { result.append(piece(of: extent, position..<start, dirty: false)) }
                result.append(piece(of: extent, start..<end, dirty: true))
                if previousEnd.map({ start < $0 }) ?? true { missed += counted(start..<min(end, previousEnd ?? end)) }
                position = end
            }
            if position < extent.end { result.append(piece(of: extent, position..<extent.end, dirty: false)) }
        }
        missedRanges.note(missed)
        return result
    }

    /// The ranges the check found changed that the dirty bitmap did not mark, sorted and merged.
    public var missed: [Range<UInt64>] { missedRanges.merged }

    /// The byte ranges of the blocks whose hashes differ between `disk` and `point`, merged, within the disk.
    public static func differingRanges(between disk: BlockHashTable, and point: BlockHashTable) -> [Range<UInt64>] {
        let blockSize = UInt64(ContentDigest.blockSize)
        var ranges: [Range<UInt64>] = []
        for block in disk.differingBlocks(from: point) {
            let start = block * blockSize
            guard start < disk.size else { continue }
            let end = min(start + blockSize, disk.size)
            if let last = ranges.last, last.upperBound == start {
                ranges[ranges.count - 1] = last.lowerBound..<end
            } else {
                ranges.append(start..<end)
            }
        }
        return ranges
    }

    /// The marked ranges that overlap `range`, found by binary search.
    private func overlapping(_ range: Range<UInt64>) -> ArraySlice<Range<UInt64>> {
        var (low, high) = (0, differing.count)
        while low < high {
            let middle = (low + high) / 2
            if differing[middle].upperBound <= range.lowerBound { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < differing.count, differing[end].lowerBound < range.upperBound { end += 1 }
        return differing[low..<end]
    }

    private func piece(of extent: SourceExtent, _ range: Range<UInt64>, dirty: Bool) -> SourceExtent {
        SourceExtent(
            offset: range.lowerBound, length: range.upperBound - range.lowerBound, content: extent.content,
            isDirty: dirty)
    }
}
