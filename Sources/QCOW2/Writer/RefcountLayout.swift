/// The refcount table and blocks of an image in which every cluster is used exactly once.
///
/// The writer never shares or frees a cluster, so the refcount of each of the first `totalClusters`
/// clusters is 1, including those of the refcount structures themselves; only their number needs solving.
struct RefcountLayout {
    let clusterSize: Int
    /// Clusters used before the refcount structures.
    let usedClusters: UInt64
    let blockCount: UInt64
    let tableClusters: UInt64

    /// 16-bit refcounts (refcount order 4), qemu's default.
    static let bytesPerRefcount = 2

    init(usedClusters: UInt64, clusterSize: Int) {
        self.clusterSize = clusterSize
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
        for index in 0..<blockCount {
            let covered = min(perBlock, totalClusters - index * perBlock)
            for entry in 0..<Int(perBlock) {
                block[entry * 2] = 0
                block[entry * 2 + 1] = UInt64(entry) < covered ? 1 : 0
            }
            try file.write(block, at: (firstBlock + index) * cluster)
        }
    }
}
