/// The refcount table and blocks of an image in which every cluster is used exactly once, but for the host clusters
/// that compressed clusters share.
///
/// The writer never frees a cluster, and shares one only between compressed clusters packed into it, so the refcount
/// of each of the first `totalClusters` clusters is 1 (those of the refcount structures themselves included) but in
/// the `packed` runs; only the structures' size needs solving.
struct RefcountLayout {
    let clusterSize: Int
    /// Clusters used before the refcount structures.
    let usedClusters: UInt64
    let blockCount: UInt64
    let tableClusters: UInt64
    /// Refcounts other than 1, in runs by increasing cluster.
    let packed: [PackedRun]

    /// 16-bit refcounts (refcount order 4), qemu's default.
    static let bytesPerRefcount = 2

    init(usedClusters: UInt64, clusterSize: Int, packed: [PackedRun] = []) {
        self.clusterSize = clusterSize
        self.packed = packed
        self.usedClusters = usedClusters
        let perBlock = UInt64(clusterSize / Self.bytesPerRefcount)
        var blocks: UInt64 = 0
        var table: UInt64 = 0
        while true {  // converges in a few rounds: the structures are tiny next to what they count
            let total = usedClusters + blocks + table
            let neededBlocks = (total + perBlock - 1) / perBlock
            let neededTable = (neededBlocks * 8 + UInt64(clusterSize) - 1) / UInt64(clusterSize)
            if neededBlocks == blocks && neededTable == table { break }
            blocks = neededBlocks
            table = neededTable
        }
        blockCount = blocks
        tableClusters = table
    }

    var totalClusters: UInt64 { usedClusters + tableClusters + blockCount }

    /// Writes the table at cluster `start`, then the blocks after it.
    func write(to file: any ImageSink, startingAt start: UInt64) throws(QCOW2Error) {
        let cluster = UInt64(clusterSize)
        let firstBlock = start + tableClusters
        var table = [UInt64](repeating: 0, count: Int(tableClusters * cluster / 8))
        for index in 0..<Int(blockCount) { table[index] = (firstBlock + UInt64(index)) * cluster }
        try file.write(QCOW2Writer.bigEndian(table), at: start * cluster)

        let perBlock = UInt64(clusterSize / Self.bytesPerRefcount)
        var block = [UInt8](repeating: 0, count: clusterSize)
        var run = 0
        for index in 0..<blockCount {
            let first = index * perBlock
            let covered = min(perBlock, totalClusters - first)
            for entry in 0..<Int(perBlock) {
                block[entry * 2] = 0
                block[entry * 2 + 1] = UInt64(entry) < covered ? 1 : 0
            }
            // The runs that reach into this block set their clusters' counts.
            while run < packed.count, packed[run].first < first + perBlock {
                let part = packed[run]
                for cluster in max(part.first, first)..<min(part.end, first + perBlock) {
                    let count = part.counts[Int(cluster - part.first)]
                    block[Int(cluster - first) * 2] = UInt8(count >> 8)
                    block[Int(cluster - first) * 2 + 1] = UInt8(count & 0xff)
                }
                if part.end > first + perBlock { break }
                run += 1
            }
            try file.write(block, at: (firstBlock + index) * cluster)
        }
    }
}
