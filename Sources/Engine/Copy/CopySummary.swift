import QCOW2

/// What a finished copy did. `pullback copy --json` prints it; what only library callers need is not encoded.
public struct CopySummary: Sendable, Codable, Equatable {
    /// Full, or incremental (the target held the previous point).
    public var mode: CopyMode
    /// The target's format.
    public var format: TargetFormat
    /// The source's size.
    public var exportSize: UInt64
    /// Bytes read from the source, for the copy.
    public var bytesRead: UInt64
    /// Data bytes written to the target.
    public var bytesWritten: UInt64
    /// Bytes that are zero in the target without being copied.
    public var zeroBytes: UInt64
    /// Extents planned (ranges to copy or zero, before being cut into requests).
    public var extents: Int
    /// How long the copy took, from opening the source to the target being durable.
    public var seconds: Double
    /// Connections the source was read over.
    public var connections: Int
    /// Requests that failed and were tried again.
    public var retries: Int
    /// Bytes read from the NBD export: ``bytesRead``, but for a synthetic full, which reads the rest from the earlier
    /// chain (``LayeredSource/bytesReadFromExport``).
    public var bytesReadFromExport: UInt64 = 0
    /// The qcow2 image's file digest, with ``CopyTarget/digestsImage``; nil when the image must be read back for it.
    public var imageDigest: SplitDigest?
    /// The disk's block hashes as the target now holds it, with ``CopyTarget/hashesBlocks``; nil when they cannot be
    /// known (an incremental without the previous point's).
    public var blockHashes: BlockHashTable?

    enum CodingKeys: String, CodingKey {
        case mode, format
        case exportSize = "export_size"
        case bytesRead = "bytes_read"
        case bytesWritten = "bytes_written"
        case zeroBytes = "zero_bytes"
        case extents, seconds, connections, retries
    }
}
