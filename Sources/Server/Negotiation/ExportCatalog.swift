import NBDProtocol

/// The exports a server offers, by name.
struct ExportCatalog {
    private let byName: [String: ServedExport]

    /// The first of exports with the same name wins.
    init(_ exports: [ServedExport]) {
        byName = Dictionary(exports.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The export named `name`; the empty name is the only export when there is one.
    func lookUp(_ name: String) -> ServedExport? {
        if name.isEmpty, byName.count == 1 { return byName.values.first }
        return byName[name]
    }

    /// Every export's name, sorted, as `NBD_OPT_LIST` gives them.
    var names: [String] { byName.keys.sorted() }

    /// The transmission flags of every export: read-only, flush and cache accepted (they do nothing), and any number
    /// of connections see the same data.
    static let transmissionFlags =
        NBDWire.hasFlags | NBDWire.readOnly | NBDWire.sendFlush | NBDWire.canMultiConn | NBDWire.sendCache
}
