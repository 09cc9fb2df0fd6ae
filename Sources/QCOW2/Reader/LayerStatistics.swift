/// What one layer of a chain holds, for `pullback image-info`.
public struct LayerStatistics: Sendable, Equatable {
    /// Bytes the layer's file occupies on its file system (st_blocks × 512): what deleting it would free.
    public var allocatedBytes: UInt64
    /// Guest bytes this layer stores data for (compressed or not), counted by cluster and clamped to the
    /// virtual size. For a raw layer, its whole size.
    public var dataBytes: UInt64
    /// Guest bytes this layer marks as reading zeros, counted the same way.
    public var zeroBytes: UInt64

    /// Creates statistics.
    public init(allocatedBytes: UInt64, dataBytes: UInt64, zeroBytes: UInt64) {
        self.allocatedBytes = allocatedBytes
        self.dataBytes = dataBytes
        self.zeroBytes = zeroBytes
    }
}
