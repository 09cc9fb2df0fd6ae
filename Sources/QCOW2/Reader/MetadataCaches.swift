/// The metadata a reader keeps in memory for the images of one chain, under one budget for the whole chain: L2 tables
/// and inflated compressed clusters, each keyed by the layer it belongs to.
///
/// One budget rather than one per image, so that a chain of a thousand points holds what a chain of sixteen would
/// (``maximumL2Budget``), not a thousand times what one image may.
final class MetadataCaches: Sendable {
    /// Which layer of the chain, and where in its file.
    struct Key: Hashable, Sendable {
        var layer: Int
        var offset: UInt64
    }

    /// The L2 budget of one image, whatever the cluster size: 64 tables of 64 KiB clusters (32 GiB of guest disk).
    static let l2BudgetPerImage = 4 << 20
    /// The most a chain's L2 tables may take, however deep: enough for the tables of one L1 entry's range (512 MiB
    /// of guest disk with 64 KiB clusters) in about a thousand layers, so that a walk of a deep chain reads each table
    /// once.
    static let maximumL2Budget = 64 << 20
    /// Inflated clusters are read once and again only for neighbouring reads; a few per chain are enough.
    static let inflatedBudget = 4 << 20

    let l2Tables = BoundedCache<Key, L2Table>(budget: l2BudgetPerImage)
    let inflatedClusters = BoundedCache<Key, [UInt8]>(budget: inflatedBudget)

    /// Grows the L2 budget with the chain, up to ``maximumL2Budget``.
    func fit(layers: Int) {
        l2Tables.budget = min(Self.maximumL2Budget, Self.l2BudgetPerImage * max(1, layers))
    }
}

/// One L2 table, decoded, with the indices of its entries that map anything: a walk over a table that maps little
/// (a small incremental's) skips the unallocated stretches in one step rather than entry by entry.
struct L2Table: Sendable {
    let entries: [UInt64]
    /// Indices of the entries that are not plainly unallocated (offset, zero or compressed bits set), ascending.
    let mapped: [Int32]

    init(entries: [UInt64]) {
        self.entries = entries
        let meaningful = ClusterGeometry.offsetMask | ClusterGeometry.zeroFlag | ClusterGeometry.compressedFlag
        var mapped: [Int32] = []
        entries.withUnsafeBufferPointer { entries in
            for index in entries.indices where entries[index] & meaningful != 0 { mapped.append(Int32(index)) }
        }
        self.mapped = mapped
    }

    /// Bytes the table takes in memory.
    var cost: Int { entries.count * 8 + mapped.count * 4 }

    /// The first index at or after `index` whose entry maps anything, or `entries.count`.
    func nextMapped(from index: Int) -> Int {
        var low = 0
        var high = mapped.count
        while low < high {
            let middle = (low + high) / 2
            if Int(mapped[middle]) < index { low = middle + 1 } else { high = middle }
        }
        return low < mapped.count ? Int(mapped[low]) : entries.count
    }
}
