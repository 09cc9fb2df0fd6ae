import NBD

extension SourceExtent {
    /// Combines what two meta contexts say about the same range into one list of extents.
    ///
    /// `allocation` is `base:allocation` (nil when the server offers none: then everything is data), `dirty`
    /// is a dirty bitmap (nil for a full copy: then everything is dirty). Both lists, when given, must cover
    /// `range` exactly, as `NBDConnection.blockStatus(in:)` returns them.
    public static func merge(
        allocation: [BlockStatusExtent]?, dirty: [BlockStatusExtent]?, range: Range<UInt64>
    ) -> [SourceExtent] {
        let allocation =
            allocation ?? [BlockStatusExtent(offset: range.lowerBound, length: UInt64(range.count), flags: 0)]
        let dirty =
            dirty ?? [
                BlockStatusExtent(offset: range.lowerBound, length: UInt64(range.count), flags: DirtyBitmapFlags.dirty)
            ]
        var merged: [SourceExtent] = []
        merged.reserveCapacity(max(allocation.count, dirty.count))
        var a = 0
        var d = 0
        var offset = range.lowerBound
        while offset < range.upperBound, a < allocation.count, d < dirty.count {
            let end = min(allocation[a].end, dirty[d].end, range.upperBound)
            if end > offset {
                let content: Content = allocation[a].flags & AllocationFlags.zero != 0 ? .zero : .data
                let isDirty = dirty[d].flags & DirtyBitmapFlags.dirty != 0
                if var last = merged.last, last.end == offset, last.content == content, last.isDirty == isDirty {
                    last.length += end - offset
                    merged[merged.count - 1] = last
                } else {
                    merged.append(
                        SourceExtent(offset: offset, length: end - offset, content: content, isDirty: isDirty))
                }
                offset = end
            }
            if allocation[a].end <= offset { a += 1 }
            if dirty[d].end <= offset { d += 1 }
        }
        return merged
    }
}
