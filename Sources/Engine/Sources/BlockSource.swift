/// Where a copy reads from: something that describes its ranges and reads them.
///
/// Implementations are safe to call from many tasks at once; reads are issued concurrently.
public protocol BlockSource: Sendable {
    /// The source's size in bytes.
    var size: UInt64 { get }
    /// The largest read the source accepts.
    var maximumReadSize: Int { get }
    /// How many independent connections reads are spread over.
    var connectionCount: Int { get }

    /// Extents covering `range` exactly, in order.
    func extents(in range: Range<UInt64>) async throws(CopyError) -> [SourceExtent]

    /// Fills `buffer` with the bytes at `offset`. `buffer` stays valid until this returns.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) async throws(CopyError)
}
