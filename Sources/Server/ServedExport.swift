import QCOW2

/// One disk the server exports, read-only: a qcow2 chain (or a raw image), under a name.
public struct ServedExport: Sendable {
    /// The export's name, as clients ask for it.
    public let name: String
    let chain: QCOW2Chain
    /// The name of the dirty bitmap whose meta context (`qemu:dirty-bitmap:<name>`) marks the clusters the chain's top
    /// image holds: for a backup point, what changed since its parent (every allocated cluster of a full point).
    public let bitmap: String?

    /// Exports `chain` as `name`, with `bitmap` naming the top image's clusters when given.
    public init(name: String, chain: QCOW2Chain, bitmap: String? = nil) {
        self.name = name
        self.chain = chain
        self.bitmap = bitmap
    }

    /// The disk's size in bytes.
    public var size: UInt64 { chain.size }

    /// The meta contexts a client can select on this export.
    var metaContexts: [MetaContext] {
        [.baseAllocation] + (bitmap.map { [MetaContext.dirtyBitmap(named: $0)] } ?? [])
    }
}

/// A meta context of block status: its id on the wire and its name.
struct MetaContext: Sendable, Equatable {
    let id: UInt32
    let name: String

    static let baseAllocation = MetaContext(id: 1, name: "base:allocation")

    static func dirtyBitmap(named bitmap: String) -> MetaContext {
        MetaContext(id: 2, name: "qemu:dirty-bitmap:" + bitmap)
    }

    var isBaseAllocation: Bool { id == Self.baseAllocation.id }
}
