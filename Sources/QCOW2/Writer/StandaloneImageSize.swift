/// The file size of the standalone image ``QCOW2Writer`` makes from a disk, known before it is written.
///
/// A standalone image (no backing file) stores only data clusters: zeros are left unallocated. Its file is one
/// header cluster, the data clusters, one L2 table per L1 entry whose range holds data, the L1 table and the
/// refcount structures (``RefcountLayout``), laid out as ``QCOW2Writer/finalize()`` lays them out. `prune --dry-run`
/// uses it to say what a merge into a full point will take without writing it.
public struct StandaloneImageSize: Sendable {
    private let size: UInt64
    private let clusterSize: UInt64
    private let bytesPerTable: UInt64
    private var dataClusters: UInt64 = 0
    private var tables: UInt64 = 0
    /// The last data cluster counted and the last L2 table counted: ranges come in ascending order, so a cluster or
    /// table shared by two neighbouring ranges is counted once.
    private var lastCluster: UInt64?
    private var lastTable: UInt64?

    /// An image of `size` virtual bytes with clusters of `1 << clusterBits` bytes (the writer's default: 64 KiB).
    public init(size: UInt64, clusterBits: Int = 16) {
        self.size = size
        clusterSize = UInt64(1) << UInt64(clusterBits)
        bytesPerTable = clusterSize * (clusterSize / 8)
    }

    /// Counts the data of the guest range `range`; ranges must come in ascending order and not overlap.
    public mutating func addData(_ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        dataClusters += Self.newUnits(of: range, unit: clusterSize, after: &lastCluster)
        tables += Self.newUnits(of: range, unit: bytesPerTable, after: &lastTable)
    }

    /// How many `unit`-sized pieces of the disk `range` touches past `last`, the last one counted, which it moves on.
    private static func newUnits(of range: Range<UInt64>, unit: UInt64, after last: inout UInt64?) -> UInt64 {
        var first = range.lowerBound / unit
        let end = (range.upperBound - 1) / unit
        if let last, first <= last { first = last + 1 }
        guard first <= end else { return 0 }
        last = end
        return end - first + 1
    }

    private var l1Entries: UInt64 { size / bytesPerTable + (size % bytesPerTable == 0 ? 0 : 1) }
    private var l1Clusters: UInt64 { (l1Entries * 8 + clusterSize - 1) / clusterSize }

    /// The bytes of the finished file (its apparent size).
    public var fileBytes: UInt64 {
        let used = 1 + dataClusters + tables + l1Clusters
        let layout = RefcountLayout(usedClusters: used, clusterSize: Int(clusterSize))
        let (bytes, overflow) = layout.totalClusters.multipliedReportingOverflow(by: clusterSize)
        return overflow ? .max : bytes
    }

    /// The bytes the finished file takes on a file system with blocks of `blockSize` bytes: the writer fills every
    /// cluster it writes but two, the header cluster (one block of header) and the L1 table's clusters (8 bytes an
    /// entry), whose rest stays a hole.
    public func allocatedBytes(blockSize: UInt64 = 4096) -> UInt64 {
        guard blockSize > 0, blockSize < clusterSize, fileBytes != .max else { return fileBytes }
        let header = clusterSize - blockSize
        let l1 = l1Clusters * clusterSize - (l1Entries * 8 + blockSize - 1) / blockSize * blockSize
        return fileBytes - header - l1
    }
}
