/// Where one image keeps its metadata in the file: the header cluster, the L1 table, the refcount table and its
/// blocks, and the L2 tables the L1 table names. Built when the image is opened; consulted for every cluster mapped.
///
/// Two rules a hostile image may break, and the reader must not trust:
/// - **An L2 table belongs to one L1 entry.** Entries that share a table make a small file describe a huge disk of
///   repeated content, and every walk of it (statistics, a map, a serve) would take time in proportion to that disk
///   rather than to the file. With distinct tables inside the file, a whole walk costs at most one step per L1 entry
///   plus one per L2 entry the file holds (its size / 8): bounded by the image's size, whatever it claims.
/// - **Guest data never lies in metadata.** A data or compressed cluster inside a table would hand the table's bytes
///   out as the disk's content, and a table inside another one would be read as two things at once.
struct ImageMetadata: Sendable {
    /// What a stretch of metadata is, for the message of an error.
    private enum Kind: Sendable, CustomStringConvertible {
        case header, l1Table, refcountTable
        case refcountBlock(index: Int)
        case l2Table(l1Index: Int)

        var description: String {
            switch self {
            case .header: "the header cluster"
            case .l1Table: "the L1 table"
            case .refcountTable: "the refcount table"
            case .refcountBlock(let index): "refcount block \(index)"
            case .l2Table(let index): "the L2 table of L1 entry \(index)"
            }
        }
    }

    /// The largest refcount table read, as in qemu (which refuses to open an image with a larger one): 8 MiB of
    /// entries address more refcount blocks than any disk needs.
    static let maximumRefcountTableBytes: UInt64 = 8 << 20

    /// Header, L1 table, refcount table and blocks: sorted by offset, none overlapping another.
    private let tables: [(range: Range<UInt64>, kind: Kind)]
    /// The host offset of each L2 table, sorted; each takes one cluster.
    private let l2Tables: [UInt64]
    private let geometry: ClusterGeometry

    /// Reads the refcount table and checks the layout: L1 entries sharing an L2 table, naming more L2 tables than
    /// the file has clusters, or tables overlapping one another are corruption. An L1 entry that is unaligned or
    /// points past the end of the file is left for the walk that reaches it to report, as before.
    init(header: QCOW2Header, l1Table: [UInt64], file: any RandomAccessImage, geometry: ClusterGeometry)
        throws(QCOW2Error)
    {
        self.geometry = geometry
        let clusterSize = geometry.clusterSize
        var tables: [(range: Range<UInt64>, kind: Kind)] = [(0..<clusterSize, .header)]
        if header.l1Size > 0 {
            tables.append((header.l1TableOffset..<header.l1TableOffset + UInt64(header.l1Size) * 8, .l1Table))
        }
        for (range, kind) in try Self.refcountStructures(header, file: file, geometry: geometry) {
            tables.append((range, kind))
        }
        tables.sort { $0.range.lowerBound < $1.range.lowerBound }
        for (first, second) in zip(tables, tables.dropFirst()) where first.range.overlaps(second.range) {
            throw geometry.corrupt("\(first.kind) at \(first.range.lowerBound) overlaps \(second.kind)")
        }
        self.tables = tables

        // Counted before anything is sorted: a table of millions of entries naming one cluster is refused in one pass.
        let named = l1Table.reduce(0) { $0 + ($1 & ClusterGeometry.offsetMask != 0 ? 1 : 0) }
        let fileClusters = file.size / clusterSize
        guard UInt64(named) <= fileClusters else {
            throw geometry.corrupt(
                "its L1 table names \(named) L2 tables, more than the \(fileClusters) clusters of the file can hold")
        }
        let l2Tables = l1Table.map { $0 & ClusterGeometry.offsetMask }.filter { offset in
            offset != 0 && offset & geometry.clusterMask == 0 && offset <= file.size
                && file.size - offset >= clusterSize
        }.sorted()
        self.l2Tables = l2Tables
        for (first, second) in zip(l2Tables, l2Tables.dropFirst()) where first == second {
            let sharing = l1Table.indices.filter { l1Table[$0] & ClusterGeometry.offsetMask == first }.prefix(2)
            throw geometry.corrupt(
                "L1 entries \(sharing.map(String.init).joined(separator: " and ")) share the L2 table at \(first)")
        }
        for table in l2Tables {
            if let overlapped = self.table(overlapping: table..<table + clusterSize) {
                let index = l1Table.firstIndex { $0 & ClusterGeometry.offsetMask == table } ?? 0
                throw geometry.corrupt(
                    "\(Kind.l2Table(l1Index: index)) at \(table) overlaps \(overlapped.kind)")
            }
        }
    }

    /// Throws `.corrupt` when `mapping` puts guest data inside metadata. `guestOffset` names the cluster in the
    /// message.
    func check(_ mapping: ClusterMapping, guestOffset: UInt64) throws(QCOW2Error) {
        let host: Range<UInt64>
        switch mapping {
        case .data(let offset): host = offset..<offset + geometry.clusterSize
        case .compressed(let offset, let length): host = offset..<offset + UInt64(length)
        case .zero, .unallocated: return
        }
        if let overlapped = table(overlapping: host) {
            throw geometry.corrupt(
                "guest offset \(guestOffset): its data at \(host.lowerBound) lies in \(overlapped.kind)")
        }
        if let table = l2Table(overlapping: host) {
            throw geometry.corrupt(
                "guest offset \(guestOffset): its data at \(host.lowerBound) lies in the L2 table at \(table)")
        }
    }

    // MARK: Lookup

    /// The table (not an L2 table) that overlaps `range`, if any: the last one starting before its end.
    private func table(overlapping range: Range<UInt64>) -> (range: Range<UInt64>, kind: Kind)? {
        let after = Self.partition(tables.count) { tables[$0].range.lowerBound >= range.upperBound }
        guard after > 0, tables[after - 1].range.overlaps(range) else { return nil }
        return tables[after - 1]
    }

    /// The L2 table that overlaps `range`, if any.
    private func l2Table(overlapping range: Range<UInt64>) -> UInt64? {
        let after = Self.partition(l2Tables.count) { l2Tables[$0] >= range.upperBound }
        guard after > 0, l2Tables[after - 1] + geometry.clusterSize > range.lowerBound else { return nil }
        return l2Tables[after - 1]
    }

    /// The first index in `0..<count` for which `isAtOrPast` holds, given that it holds for every index after it.
    private static func partition(_ count: Int, _ isAtOrPast: (Int) -> Bool) -> Int {
        var (low, high) = (0, count)
        while low < high {
            let middle = (low + high) / 2
            if isAtOrPast(middle) { high = middle } else { low = middle + 1 }
        }
        return low
    }

    // MARK: Refcount structures

    /// The refcount table's range and each refcount block's. The table must lie inside the file and be no larger
    /// than qemu allows; a block entry that is unaligned or past the end of the file is skipped: the reader never
    /// uses refcounts, so only where the blocks really are matters here.
    private static func refcountStructures(
        _ header: QCOW2Header, file: any RandomAccessImage, geometry: ClusterGeometry
    ) throws(QCOW2Error) -> [(Range<UInt64>, Kind)] {
        guard header.refcountTableClusters > 0 else { return [] }
        let bytes = UInt64(header.refcountTableClusters) * geometry.clusterSize
        guard bytes <= maximumRefcountTableBytes else {
            throw geometry.corrupt("its refcount table of \(bytes) bytes is larger than 8 MiB")
        }
        let offset = header.refcountTableOffset
        guard offset <= file.size, bytes <= file.size - offset else {
            throw geometry.corrupt("the refcount table at \(offset) runs past the end of the file")
        }
        var structures: [(Range<UInt64>, Kind)] = [(offset..<offset + bytes, .refcountTable)]
        let entries = try QCOW2Image.readTable(file, at: offset, entries: Int(bytes / 8))
        // Indices, not enumerated(): a table is thousands of entries, mostly empty, and each layer of a deep chain
        // reads its own when it opens.
        for index in entries.indices where entries[index] != 0 {
            let block = entries[index] & ClusterGeometry.offsetMask
            guard block != 0, block & geometry.clusterMask == 0, block <= file.size,
                file.size - block >= geometry.clusterSize
            else { continue }
            structures.append((block..<block + geometry.clusterSize, .refcountBlock(index: index)))
        }
        return structures
    }
}
