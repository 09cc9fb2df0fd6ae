/// Where a copy writes to.
///
/// Implementations are safe to call from many tasks at once; writes to different ranges run concurrently.
public protocol BlockTarget: Sendable {
    /// Writes `bytes` at `offset`. `bytes` stays valid until this returns.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws(CopyError)

    /// Makes `length` bytes at `offset` read as zeros, without keeping data there where possible.
    func writeZeros(at offset: UInt64, length: UInt64) async throws(CopyError)
}
