extension QCOW2Chain {
    /// What each layer holds, in the order of `layers`.
    ///
    /// Walks every layer's L1 and L2 tables once, so it takes time in proportion to the allocated
    /// metadata and constant memory, even for a terabyte disk.
    public func layerStatistics() throws(QCOW2Error) -> [LayerStatistics] {
        var statistics: [LayerStatistics] = []
        for image in images {
            var data: UInt64 = 0
            var zero: UInt64 = 0
            try image.forEachRun(in: 0..<image.virtualSize) { run throws(QCOW2Error) in
                switch run.mapping {
                case .data, .compressed: data += run.length
                case .zero: zero += run.length
                case .unallocated: break
                }
            }
            statistics.append(
                LayerStatistics(allocatedBytes: try image.file.allocatedBytes(), dataBytes: data, zeroBytes: zero))
        }
        return statistics
    }
}
