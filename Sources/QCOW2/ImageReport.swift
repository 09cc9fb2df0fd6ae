/// What `pullback image-info` shows: an image's backing chain and what each layer holds.
public struct ImageReport: Sendable, Codable, Equatable {
    /// One layer of the chain, top first.
    public struct Layer: Sendable, Codable, Equatable {
        public var path: String
        public var format: String
        public var virtualSize: UInt64
        public var clusterSize: Int
        /// The backing file name as stored in this layer's header, if any.
        public var backingFile: String?
        /// How the layer's compressed clusters are encoded, "zlib" or "zstd" (as qemu-img info names it); nil for a
        /// raw layer.
        public var compressionType: String?
        /// Bytes the layer's file occupies on disk.
        public var allocatedBytes: UInt64
        /// Guest bytes this layer holds data for.
        public var dataBytes: UInt64
        /// Guest bytes this layer marks as zeros.
        public var zeroBytes: UInt64

        enum CodingKeys: String, CodingKey {
            case path, format
            case virtualSize = "virtual_size"
            case clusterSize = "cluster_size"
            case backingFile = "backing_file"
            case compressionType = "compression_type"
            case allocatedBytes = "allocated_bytes"
            case dataBytes = "data_bytes"
            case zeroBytes = "zero_bytes"
        }
    }

    public var image: String
    public var virtualSize: UInt64
    public var layers: [Layer]

    enum CodingKeys: String, CodingKey {
        case image
        case virtualSize = "virtual_size"
        case layers
    }

    /// Opens `path` and its backing chain by qemu's rules (``QCOW2Chain/init(path:format:allowDevices:)``) and
    /// measures every layer. Blocking: it reads the images. A FIFO, a socket or a folder is never opened, nor a
    /// block or character device unless `allowDevices`.
    public init(path: String, allowDevices: Bool = false) throws(QCOW2Error) {
        let chain = try QCOW2Chain.open(path: path, allowDevices: allowDevices)
        let statistics = try chain.layerStatistics()
        image = path
        virtualSize = chain.size
        layers = zip(chain.layers, statistics).map { layer, numbers in
            Layer(
                path: layer.path, format: layer.format.rawValue, virtualSize: layer.virtualSize,
                clusterSize: layer.clusterSize, backingFile: layer.header?.backingFile,
                compressionType: layer.header.map { QCOW2Header.CompressionType.name($0.compressionType) },
                allocatedBytes: numbers.allocatedBytes, dataBytes: numbers.dataBytes, zeroBytes: numbers.zeroBytes)
        }
    }
}
