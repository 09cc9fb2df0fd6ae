import Synchronization

/// Ranges of a disk noted from many tasks, each noted once however often it is seen again (a window may be mapped
/// twice: for progress, then to copy), and read back sorted and merged.
final class RangeRecord: Sendable {
    /// The ends of the ranges, by start.
    private let ends = Mutex<[UInt64: UInt64]>([:])

    /// Notes `ranges`.
    func note(_ ranges: some Sequence<Range<UInt64>>) {
        ends.withLock { ends in
            for range in ranges where !range.isEmpty { ends[range.lowerBound] = range.upperBound }
        }
    }

    /// Every range noted, sorted, those that touch or overlap merged.
    var merged: [Range<UInt64>] {
        let ranges = ends.withLock { $0 }.map { $0.key..<$0.value }.sorted { $0.lowerBound < $1.lowerBound }
        return ranges.reduce(into: []) { merged, range in
            if let last = merged.last, range.lowerBound <= last.upperBound {
                merged[merged.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
            } else {
                merged.append(range)
            }
        }
    }
}
