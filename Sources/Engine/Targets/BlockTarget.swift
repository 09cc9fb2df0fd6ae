/// Where a copy writes to.
///
/// Implementations are safe to call from many tasks at once; writes to different ranges run concurrently.
public protocol BlockTarget: Sendable {
    /// Writes `bytes` at `offset`. `bytes` stays valid until this returns.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws(CopyError)

    /// Writes `bytes` at `offset` as ``write(_:at:)`` does, given the SHA-256 of each whole 64 KiB piece of `bytes` from
    /// its start (32 bytes each, in order), which a target that hashes what it writes need not compute again.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, pieceHashes: UnsafeRawBufferPointer)
        async throws(CopyError)

    /// Makes `length` bytes at `offset` read as zeros, without keeping data there where possible.
    func writeZeros(at offset: UInt64, length: UInt64) async throws(CopyError)

    /// The copy will write nothing more below `offset`; a target may write out what it kept for that range.
    func settled(below offset: UInt64) async throws(CopyError)

    /// The smallest unit the target writes: every write and zero covers whole units (except at the end).
    var granularity: Int { get }

    /// For an incremental copy, where the previous point the target holds ends when it is shorter than the source
    /// (a disk grown since): past it the target reads as zeros, as a new one does, and is written as in a full copy.
    /// nil when the previous point covers the whole source.
    var previousEnd: UInt64? { get }
}

extension BlockTarget {
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, pieceHashes: UnsafeRawBufferPointer)
        async throws(CopyError)
    {
        try await write(bytes, at: offset)
    }

    public func settled(below offset: UInt64) async throws(CopyError) {}
    public var granularity: Int { 1 }
    public var previousEnd: UInt64? { nil }
}
