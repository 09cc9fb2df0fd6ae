import FileIO
import QCOW2

extension Copy {
    /// The bytes the standalone qcow2 image a merge of `layers` writes (a ``CopySource/chain(_:)`` copied into a
    /// ``CopyTarget/qcow2(_:replacing:)``) takes on disk (``StandaloneImageSize/allocatedBytes(blockSize:)``), found from the chain's tables alone (no
    /// data is read): what `prune --dry-run` says a merge takes.
    public static func mergedFileBytes(exactly layers: [QCOW2Chain.ExpectedLayer]) async throws(CopyError) -> UInt64 {
        let chain = try await QCOW2ChainSource.open(exactly: layers).chain
        return try await BlockingWork.run { () throws(CopyError) -> UInt64 in
            var image = StandaloneImageSize(size: chain.size)
            // Mapped a gigabyte at a time, so that a fragmented terabyte disk's extents are never all in memory.
            let step: UInt64 = 1 << 30
            var offset: UInt64 = 0
            while offset < chain.size {
                let end = chain.size - offset > step ? offset + step : chain.size
                do throws(QCOW2Error) {
                    for extent in try chain.map(offset..<end) where extent.kind == .data { image.addData(extent.range) }
                } catch {
                    throw CopyError(.source, "cannot map \(chain.layers[0].path): \(error.message)", cause: error)
                }
                offset = end
            }
            return image.allocatedBytes()
        }
    }
}
