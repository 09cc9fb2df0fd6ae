extension QCOW2Chain {
    /// One image of a chain, as opened.
    public struct Layer: Sendable, Equatable {
        /// The on-disk format of a layer.
        public enum Format: String, Sendable, Equatable {
            /// A plain disk image: guest offset equals file offset.
            case raw
            /// A qcow2 image, possibly with a backing file.
            case qcow2
        }

        /// The path the layer was opened by: the chain's path for the top, and for a backing file its name
        /// resolved against the directory of the image that names it.
        public var path: String
        /// The layer's format, from its overlay's backing format extension or probed from its magic.
        public var format: Format
        /// The size of the disk the layer presents; for raw, the file's size.
        public var virtualSize: UInt64
        /// The qcow2 cluster size; for raw, which has no clusters, 512, the sector size it is addressed by.
        public var clusterSize: Int
        /// The qcow2 header; nil for raw.
        public var header: QCOW2Header?

        /// Creates a layer description.
        public init(path: String, format: Format, virtualSize: UInt64, clusterSize: Int, header: QCOW2Header?) {
            self.path = path
            self.format = format
            self.virtualSize = virtualSize
            self.clusterSize = clusterSize
            self.header = header
        }
    }
}
