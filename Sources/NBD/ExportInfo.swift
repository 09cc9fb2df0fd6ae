/// What the server told about an export during the handshake.
public struct ExportInfo: Sendable, Equatable {
    /// Block size constraints; 0 where the server advertised none.
    public struct BlockSizes: Sendable, Equatable {
        public var minimum: UInt32
        public var preferred: UInt32
        public var maximum: UInt32
    }

    /// The export's size in bytes.
    public var size: UInt64
    /// The block sizes the server advertised.
    public var blockSizes: BlockSizes
    /// Whether the server allows several connections to see one consistent export (`NBD_FLAG_CAN_MULTI_CONN`).
    public var canMultiConn: Bool
    /// Whether the export is read-only.
    public var isReadOnly: Bool
    /// The meta contexts the server agreed to, among those requested.
    public var metaContexts: Set<String>

    /// The largest read the server accepts: its advertised maximum, else the protocol's usual 32 MiB.
    public var maximumRequestSize: Int {
        Int(blockSizes.maximum > 0 ? blockSizes.maximum : 32 << 20)
    }
}
