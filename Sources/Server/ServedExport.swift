import NBDProtocol
import QCOW2

/// One disk the server exports, read-only: a qcow2 chain (or a raw image), under a name.
public struct ServedExport: Sendable {
    /// The export's name, as clients ask for it.
    public let name: String
    let chain: QCOW2Chain
    /// The name of the dirty bitmap whose meta context (`qemu:dirty-bitmap:<name>`) marks the clusters the chain's top
    /// image holds: for a backup point, what changed since its parent (every allocated cluster of a full point).
    public let bitmap: String?
    /// Whether the bitmap marks the whole export instead: the top image is standalone although its point has a parent
    /// (a raw disk, copied whole at every point), so its clusters are not what changed, and a region it leaves
    /// unallocated may hold data in the parent's image.
    public let bitmapMarksEverything: Bool

    /// Exports `chain` as `name`, with `bitmap` naming the top image's clusters (or, with `bitmapMarksEverything`,
    /// the whole export) when given.
    public init(name: String, chain: QCOW2Chain, bitmap: String? = nil, bitmapMarksEverything: Bool = false) {
        self.name = name
        self.chain = chain
        self.bitmap = bitmap
        self.bitmapMarksEverything = bitmapMarksEverything
    }

    /// The disk's size in bytes.
    public var size: UInt64 { chain.size }

    /// The meta contexts a client can select on this export.
    var metaContexts: [MetaContext] {
        [.baseAllocation, .allocationDepth]
            + (bitmap.map { [MetaContext.dirtyBitmap(named: $0, everything: bitmapMarksEverything)] } ?? [])
    }
}

/// A meta context of block status: its id on the wire and its name.
struct MetaContext: Sendable, Equatable {
    let id: UInt32
    let name: String
    /// For a dirty bitmap: every extent is marked, not only the top image's.
    var marksEverything = false

    static let baseAllocation = MetaContext(id: 1, name: "base:allocation")
    /// Which image of the chain holds each extent, as qemu-nbd reports it: 1 for the top, 2 for its backing file,
    /// and so on; 0 where none does.
    static let allocationDepth = MetaContext(id: 3, name: "qemu:allocation-depth")

    static func dirtyBitmap(named bitmap: String, everything: Bool = false) -> MetaContext {
        MetaContext(id: 2, name: "qemu:dirty-bitmap:" + bitmap, marksEverything: everything)
    }

    /// The block status flags of `extent` in this context.
    func flags(of extent: ChainExtent) -> UInt32 {
        switch id {
        case Self.baseAllocation.id:
            switch extent.kind {
            case .data: 0
            case .zero: NBDWire.stateZero
            case .unallocated: NBDWire.stateZero | NBDWire.stateHole
            }
        case Self.allocationDepth.id:
            extent.layer.map { UInt32(clamping: $0 + 1) } ?? 0
        default:
            // A dirty bitmap: set where the chain's top image holds the extent (everywhere if it marks everything).
            marksEverything || extent.layer == 0 ? NBDWire.stateDirty : 0
        }
    }
}
