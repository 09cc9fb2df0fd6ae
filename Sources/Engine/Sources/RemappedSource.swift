/// A source that reads exactly what another one reads and describes it differently: only ``extents(in:)`` is its own
/// (``CheckedSource``, ``CleanRangesSource``).
public protocol RemappedSource: BlockSource {
    associatedtype Inner: BlockSource
    /// The source read.
    var inner: Inner { get }
}

extension RemappedSource {
    public var size: UInt64 { inner.size }
    public var maximumReadSize: Int { inner.maximumReadSize }
    public var connectionCount: Int { inner.connectionCount }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        try await inner.read(into: buffer, at: offset)
    }
}
