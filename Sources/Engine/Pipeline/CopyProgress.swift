import Synchronization

/// Live counters of a copy, safe to read from another task while the copy runs (for a progress bar).
public final class CopyProgress: Sendable {
    private let read = Atomic<UInt64>(0)
    private let written = Atomic<UInt64>(0)
    private let zeroed = Atomic<UInt64>(0)
    private let extents = Atomic<Int>(0)
    private let total = Atomic<UInt64>(0)
    private let totalKnown = Atomic<Bool>(false)

    public init() {}

    /// Bytes read from the source so far.
    public var bytesRead: UInt64 { read.load(ordering: .relaxed) }
    /// Data bytes written to the target so far.
    public var bytesWritten: UInt64 { written.load(ordering: .relaxed) }
    /// Bytes that are zero in the target without being copied: skipped holes and zeros in a full copy,
    /// zeroed dirty ranges in an incremental one.
    public var zeroBytes: UInt64 { zeroed.load(ordering: .relaxed) }
    /// Extents planned so far (ranges to copy or zero, before being cut into requests).
    public var extentCount: Int { extents.load(ordering: .relaxed) }
    /// Bytes the whole copy will read, once known (see ``CopyPipeline/measureTotal``).
    public var bytesToCopy: UInt64? { totalKnown.load(ordering: .acquiring) ? total.load(ordering: .relaxed) : nil }

    package func addRead(_ bytes: UInt64) { read.add(bytes, ordering: .relaxed) }
    func addWritten(_ bytes: UInt64) { written.add(bytes, ordering: .relaxed) }
    func addZero(_ bytes: UInt64) { zeroed.add(bytes, ordering: .relaxed) }
    func addExtents(_ count: Int) { extents.add(count, ordering: .relaxed) }
    package func setTotal(_ bytes: UInt64) {
        total.store(bytes, ordering: .relaxed)
        totalKnown.store(true, ordering: .releasing)
    }
}
