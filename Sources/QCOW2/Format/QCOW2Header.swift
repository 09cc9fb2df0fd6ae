/// The qcow2 header: the fixed fields of version 3 and the header extensions Pullback reads and writes.
///
/// All fields are big-endian on disk. See qemu's docs/interop/qcow2.txt.
public struct QCOW2Header: Sendable, Equatable {
    public static let magic: UInt32 = 0x5146_49FB  // "QFI\xfb"
    /// Length of the version 3 header without the compression type field.
    public static let version3Length: UInt32 = 104
    /// Length of the version 3 header with the compression type field (and its padding).
    public static let version3LengthWithCompressionType: UInt32 = 112

    public var version: UInt32 = 3
    public var backingFileOffset: UInt64 = 0
    public var backingFileSize: UInt32 = 0
    public var clusterBits: UInt32 = 16
    public var size: UInt64 = 0
    public var cryptMethod: UInt32 = 0
    public var l1Size: UInt32 = 0
    public var l1TableOffset: UInt64 = 0
    public var refcountTableOffset: UInt64 = 0
    public var refcountTableClusters: UInt32 = 0
    public var snapshotCount: UInt32 = 0
    public var snapshotsOffset: UInt64 = 0
    public var incompatibleFeatures: UInt64 = 0
    public var compatibleFeatures: UInt64 = 0
    public var autoclearFeatures: UInt64 = 0
    public var refcountOrder: UInt32 = 4
    public var headerLength: UInt32 = version3LengthWithCompressionType
    public var compressionType: UInt8 = 0
    /// The backing file's format, from the header extension (0xE2792ACA), if present.
    public var backingFormat: String?
    /// The backing file's name, read from `backingFileOffset`.
    public var backingFile: String?

    public init() {}

    public var clusterSize: Int { 1 << Int(clusterBits) }
    /// Entries of an L2 table (standard, non-extended entries of 8 bytes).
    public var l2Entries: Int { clusterSize / 8 }
    /// Refcount bits per cluster.
    public var refcountBits: Int { 1 << Int(refcountOrder) }

    // MARK: Feature bits

    public enum Incompatible {
        /// Refcounts may be wrong: the image was not closed cleanly.
        public static let dirty: UInt64 = 1 << 0
        /// The image is known to be corrupt.
        public static let corrupt: UInt64 = 1 << 1
        public static let externalDataFile: UInt64 = 1 << 2
        /// `compressionType` is not zlib.
        public static let compressionType: UInt64 = 1 << 3
        public static let extendedL2: UInt64 = 1 << 4
        /// The bits this implementation understands.
        public static let known: UInt64 = dirty | corrupt | externalDataFile | compressionType | extendedL2
    }

    /// Values of `compressionType`: how compressed clusters are encoded.
    public enum CompressionType {
        /// Raw deflate with a 4 KiB window: the only type of version 2 and of headers without the field.
        public static let zlib: UInt8 = 0
        /// zstd frames; needs the `Incompatible.compressionType` bit.
        public static let zstd: UInt8 = 1

        /// The name qemu-img gives a compression type, or its number for a type it does not know.
        public static func name(_ type: UInt8) -> String {
            switch type {
            case zlib: "zlib"
            case zstd: "zstd"
            default: "\(type)"
            }
        }
    }

    public enum ExtensionType {
        public static let end: UInt32 = 0
        public static let backingFormat: UInt32 = 0xE279_2ACA
        public static let featureNameTable: UInt32 = 0x6803_F857
        public static let bitmaps: UInt32 = 0x2385_2875
    }
}
