import Synchronization

/// A disk's export laid over a copy of the same disk at an earlier point, for a synthetic full: the ranges the
/// export's dirty bitmap reports clean are read from `earlier` (the repository's chain of the point the bitmap counts
/// from), everything else from `export`. Copied in ``CopyMode/full``, it makes a standalone image of the disk as it
/// is now while reading from the export only what changed.
///
/// A range is read from `earlier` only once ``extents(in:)`` has reported it clean and it lies within `earlier`'s
/// size; anything else (dirty, past the earlier end of a disk grown since, whose region QEMU's bitmap leaves clean, or
/// never mapped) is read from the export, which always holds the right bytes. A read spanning both is split at every
/// boundary, so that however the pipeline widens and joins its requests, no dirty byte comes from `earlier`.
public final class LayeredSource<Export: BlockSource, Earlier: BlockSource>: BlockSource {
    /// The disk as it is now, with a dirty bitmap saying what changed since `earlier`.
    public let export: Export
    /// The disk as it was when the bitmap started counting.
    public let earlier: Earlier
    /// The clean ranges the export reported, clipped to `earlier`'s size: sorted, disjoint.
    private let clean = Mutex<[Range<UInt64>]>([])
    private let exportBytes = Atomic<UInt64>(0)

    /// Lays `export` over `earlier`, which must be no larger (a disk that shrank is copied from its export alone).
    public init(export: Export, earlier: Earlier) {
        precondition(earlier.size <= export.size, "the earlier disk is larger than the export")
        self.export = export
        self.earlier = earlier
    }

    public var size: UInt64 { export.size }
    public var maximumReadSize: Int { min(export.maximumReadSize, earlier.maximumReadSize) }
    public var connectionCount: Int { export.connectionCount }
    /// Bytes read from the export so far; the rest came from `earlier`.
    public var bytesReadFromExport: UInt64 { exportBytes.load(ordering: .relaxed) }

    /// The export's extents; the clean ones are remembered (replacing what an earlier call said about `range`), so
    /// that reads of them go to `earlier`.
    public func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent] {
        let extents = try await export.extents(in: range)
        let limit = earlier.size
        var found: [Range<UInt64>] = []
        for extent in extents where !extent.isDirty && extent.offset < limit {
            let piece = extent.offset..<min(extent.end, limit)
            if let last = found.last, last.upperBound == piece.lowerBound {
                found[found.count - 1] = last.lowerBound..<piece.upperBound
            } else {
                found.append(piece)
            }
        }
        clean.withLock { ranges in Self.replace(range, in: &ranges, with: found) }
        return extents
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        let end = offset + UInt64(buffer.count)
        let pieces = clean.withLock { ranges in Self.pieces(of: offset..<end, clean: ranges) }
        for (piece, isClean) in pieces {
            let start = Int(piece.lowerBound - offset)
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + piece.count])
            if isClean {
                try await earlier.read(into: part, at: piece.lowerBound)
            } else {
                try await export.read(into: part, at: piece.lowerBound)
                exportBytes.add(UInt64(piece.count), ordering: .relaxed)
            }
        }
    }

    /// `ranges` (sorted, disjoint) with what lay within `range` replaced by `found` (sorted, disjoint, within it).
    static func replace(_ range: Range<UInt64>, in ranges: inout [Range<UInt64>], with found: [Range<UInt64>]) {
        let first = ranges.partitioningIndex { $0.upperBound > range.lowerBound }
        var last = first
        while last < ranges.count, ranges[last].lowerBound < range.upperBound { last += 1 }
        var kept: [Range<UInt64>] = []
        if first < last {
            // Parts of the overlapped ranges outside `range` stay.
            if ranges[first].lowerBound < range.lowerBound { kept.append(ranges[first].lowerBound..<range.lowerBound) }
            kept += found
            if ranges[last - 1].upperBound > range.upperBound {
                kept.append(range.upperBound..<ranges[last - 1].upperBound)
            }
        } else {
            kept = found
        }
        ranges.replaceSubrange(first..<last, with: kept)
    }

    /// `range` cut at the boundaries of `clean` (sorted, disjoint), each piece with whether it is clean.
    static func pieces(of range: Range<UInt64>, clean: [Range<UInt64>]) -> [(Range<UInt64>, Bool)] {
        var pieces: [(Range<UInt64>, Bool)] = []
        var offset = range.lowerBound
        var index = clean.partitioningIndex { $0.upperBound > offset }
        while offset < range.upperBound {
            guard index < clean.count, clean[index].lowerBound < range.upperBound else {
                pieces.append((offset..<range.upperBound, false))
                break
            }
            let next = clean[index]
            if next.lowerBound > offset {
                pieces.append((offset..<next.lowerBound, false))
                offset = next.lowerBound
            }
            let stop = min(next.upperBound, range.upperBound)
            pieces.append((offset..<stop, true))
            offset = stop
            index += 1
        }
        return pieces
    }
}

extension Array {
    /// The first index whose element satisfies `isAbove`, for an array in which every element that does comes after
    /// every one that does not.
    fileprivate func partitioningIndex(where isAbove: (Element) -> Bool) -> Int {
        var (low, high) = (0, count)
        while low < high {
            let middle = (low + high) / 2
            if isAbove(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
