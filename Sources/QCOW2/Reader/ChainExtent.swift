/// A stretch of a chain's virtual disk that reads the same way, as `QCOW2Chain.map` reports it.
public struct ChainExtent: Sendable, Equatable, CustomStringConvertible {
    /// How the bytes of an extent are obtained.
    public enum Kind: Sendable, Equatable {
        /// Stored in a layer (compressed or not): must be copied.
        case data
        /// A layer says these bytes read as zeros.
        case zero
        /// No layer has these bytes; they read as zeros. Kept apart from `.zero` because an overlay may
        /// leave them to a backing file added later, whereas `.zero` hides any backing file.
        case unallocated
    }

    /// Guest offset of the first byte.
    public var offset: UInt64
    /// Length in bytes, never zero.
    public var length: UInt64
    /// How the bytes read.
    public var kind: Kind
    /// Index in `QCOW2Chain.layers` of the layer that decided these bytes (0 is the top), or nil when no
    /// layer did: unallocated everywhere, or past the end of a backing file shorter than its overlay. A hole in a
    /// raw base is `.unallocated` with the raw layer's index, as qemu counts it.
    public var layer: Int?

    /// Creates an extent.
    public init(offset: UInt64, length: UInt64, kind: Kind, layer: Int?) {
        self.offset = offset
        self.length = length
        self.kind = kind
        self.layer = layer
    }

    /// The guest byte range the extent covers.
    public var range: Range<UInt64> { offset..<offset + length }

    /// A compact form for logs and test failures: `0+65536 data@1`.
    public var description: String {
        "\(offset)+\(length) \(kind)" + (layer.map { "@\($0)" } ?? "")
    }
}

/// Builds a list of extents, joining an extent to the previous one when they touch and read the same
/// way, so that a map's length follows the image's fragmentation rather than its size.
struct ChainExtentList {
    private(set) var extents: [ChainExtent] = []

    mutating func append(_ extent: ChainExtent) {
        guard extent.length > 0 else { return }
        if let last = extents.last, last.offset + last.length == extent.offset, last.kind == extent.kind,
            last.layer == extent.layer
        {
            extents[extents.count - 1].length += extent.length
        } else {
            extents.append(extent)
        }
    }
}
