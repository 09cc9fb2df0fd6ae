import QCOW2

/// One disk the server exports, read-only: a qcow2 chain (or a raw image), under a name.
public struct ServedExport: Sendable {
    /// The export's name, as clients ask for it.
    public let name: String
    let chain: QCOW2Chain

    /// Exports `chain` as `name`.
    public init(name: String, chain: QCOW2Chain) {
        self.name = name
        self.chain = chain
    }

    /// The disk's size in bytes.
    public var size: UInt64 { chain.size }
}
