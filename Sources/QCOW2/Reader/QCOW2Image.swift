/// One qcow2 image file, read-only: its header, its L1 table, and the mapping of each guest cluster.
///
/// It does not follow its backing file; `QCOW2Chain` does. Safe to use from several threads at once: the
/// only mutable state, the L2 and decompressed-cluster caches (shared by the images of a chain), sits behind a mutex.
public final class QCOW2Image: Sendable {
    /// The path the image was opened by.
    public let path: String
    /// The parsed header, including the backing file name and format as written in the image.
    public let header: QCOW2Header

    let file: any RandomAccessImage
    let geometry: ClusterGeometry
    /// The whole L1 table, decoded. At most `QCOW2Header.maximumL1Bytes`, which the header parser enforces.
    let l1Table: [UInt64]
    /// Where the metadata lies, so that no guest cluster is read from it.
    let metadata: ImageMetadata
    /// The caches of the chain the image belongs to (its own when opened alone), and its layer there.
    let caches: MetadataCaches
    private let layer: Int

    /// Opens the image at `path` read-only, reads its header, L1 table and refcount table, and checks their layout.
    ///
    /// Throws `.notQCOW2` for a file without the qcow2 magic, `.unsupported` for features that cannot be
    /// read safely, `.corrupt` for inconsistent structures and `.io` if the file cannot be read, or is a FIFO, a
    /// socket or a folder, or a block or character device without `allowDevices`.
    public convenience init(path: String, allowDevices: Bool = false) throws(QCOW2Error) {
        try self.init(file: ReadOnlyFile(path: path, allowingDevices: allowDevices))
    }

    /// Opens the image in `file` as layer `layer` of a chain whose metadata shares `caches`.
    init(file: any RandomAccessImage, caches: MetadataCaches = MetadataCaches(), layer: Int = 0) throws(QCOW2Error) {
        let header: QCOW2Header
        do {
            header = try Self.readHeader(file)
        } catch {
            throw QCOW2Error(error.code, "\(file.path): \(error.message)", cause: error.cause)
        }
        self.path = file.path
        self.file = file
        self.header = header
        self.geometry = ClusterGeometry(
            path: file.path, clusterBits: Int(header.clusterBits), version: header.version, fileSize: file.size)
        self.l1Table = try Self.readTable(
            file, at: header.l1TableOffset, entries: Int(header.l1Size))
        self.metadata = try ImageMetadata(header: header, l1Table: l1Table, file: file, geometry: geometry)
        self.caches = caches
        self.layer = layer
    }

    /// The size of the disk the image presents, in bytes.
    public var virtualSize: UInt64 { header.size }
    /// Bytes per cluster, the unit of allocation and of mapping.
    public var clusterSize: Int { header.clusterSize }
    /// The size of the image file itself when it was opened.
    public var fileSize: UInt64 { file.size }

    /// How the guest cluster that contains `guestOffset` is stored in this image (ignoring any backing file).
    ///
    /// Throws `.invalidArgument` for an offset at or past the virtual size, `.corrupt` if the L1 or L2
    /// entry points somewhere it may not.
    public func mapping(ofClusterAt guestOffset: UInt64) throws(QCOW2Error) -> ClusterMapping {
        guard guestOffset < virtualSize else {
            throw QCOW2Error(.invalidArgument, "\(path): offset \(guestOffset) is past the virtual size \(virtualSize)")
        }
        let clusterStart = guestOffset & ~geometry.clusterMask
        let end = min(clusterStart + geometry.clusterSize, virtualSize)
        var found = ClusterMapping.unallocated
        try forEachRun(in: clusterStart..<end) { run throws(QCOW2Error) in found = run.mapping }
        return found
    }

    /// Calls `body` with consecutive runs that exactly cover `range` (which must lie within the virtual
    /// size), walking L1 then L2 so that unallocated L2 ranges cost one step however large they are. A whole walk
    /// reads each L2 table once: its work is bounded by the file's size (see ``ImageMetadata``).
    func forEachRun(in range: Range<UInt64>, _ body: (LayerRun) throws(QCOW2Error) -> Void) throws(QCOW2Error) {
        precondition(range.upperBound <= virtualSize, "runs are only defined inside the virtual disk")
        var merger = LayerRunMerger()
        var offset = range.lowerBound
        let l2Shift = UInt64(geometry.clusterBits + geometry.l2Bits)
        while offset < range.upperBound {
            let l1Index = offset >> l2Shift
            let tableEnd = min(range.upperBound, (l1Index + 1) << l2Shift)
            guard l1Index < UInt64(l1Table.count) else {
                throw QCOW2Error(
                    .corrupt, "\(path): guest offset \(offset) is beyond the L1 table (\(l1Table.count) entries)")
            }
            guard let tableOffset = try geometry.l2TableOffset(fromL1Entry: l1Table[Int(l1Index)], index: Int(l1Index))
            else {
                try merger.add(LayerRun(offset: offset, length: tableEnd - offset, mapping: .unallocated), body)
                offset = tableEnd
                continue
            }
            let table = try l2Table(at: tableOffset)
            let tableStart = l1Index << l2Shift
            while offset < tableEnd {
                let clusterStart = offset & ~geometry.clusterMask
                let index = Int((offset >> UInt64(geometry.clusterBits)) & UInt64(table.entries.count - 1))
                let mapped = table.nextMapped(from: index)
                if mapped > index {
                    // Unallocated up to the next entry that maps anything: one step however many entries lie between.
                    let end = min(tableEnd, tableStart + UInt64(mapped) << UInt64(geometry.clusterBits))
                    try merger.add(LayerRun(offset: offset, length: end - offset, mapping: .unallocated), body)
                    offset = end
                    continue
                }
                let clusterEnd = min(clusterStart + geometry.clusterSize, tableEnd)
                var mapping = try geometry.mapping(ofL2Entry: table.entries[index], guestOffset: clusterStart)
                try metadata.check(mapping, guestOffset: clusterStart)
                if case .data(let host) = mapping { mapping = .data(hostOffset: host + (offset - clusterStart)) }
                try merger.add(LayerRun(offset: offset, length: clusterEnd - offset, mapping: mapping), body)
                offset = clusterEnd
            }
        }
        try merger.finish(body)
    }

    /// Fills `buffer` with the guest bytes of `run`, which must be a run of this image. An unallocated run
    /// reads as zeros: the caller decides whether a backing file should be asked instead.
    func read(_ run: LayerRun, into buffer: UnsafeMutableRawBufferPointer) throws(QCOW2Error) {
        precondition(UInt64(buffer.count) == run.length, "the buffer must match the run")
        switch run.mapping {
        case .data(let hostOffset):
            try file.read(into: buffer, at: hostOffset)
        case .compressed(let hostOffset, let length):
            let cluster = try inflatedCluster(at: hostOffset, length: length)
            let start = Int(run.offset & geometry.clusterMask)
            cluster.withUnsafeBytes { source in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[start..<start + buffer.count]))
            }
        case .zero, .unallocated:
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    // MARK: Loading metadata

    private func l2Table(at offset: UInt64) throws(QCOW2Error) -> L2Table {
        try caches.l2Tables.value(for: MetadataCaches.Key(layer: layer, offset: offset)) { () throws(QCOW2Error) in
            let table = L2Table(entries: try Self.readTable(file, at: offset, entries: header.l2Entries))
            return (table, table.cost)
        }
    }

    private func inflatedCluster(at hostOffset: UInt64, length: Int) throws(QCOW2Error) -> [UInt8] {
        try caches.inflatedClusters.value(for: MetadataCaches.Key(layer: layer, offset: hostOffset)) {
            () throws(QCOW2Error) in
            // The sector count may round past the end of the file for the last compressed cluster; those
            // bytes were never written and the data ends before them, so read only what exists.
            let available = Int(min(UInt64(length), file.size - hostOffset))
            let input = try file.read(count: available, at: hostOffset)
            do throws(DecompressionFailure) {
                let cluster = try ClusterDecompressor.decompress(
                    input, compressionType: header.compressionType, clusterSize: clusterSize)
                return (cluster, cluster.count)
            } catch {
                let code: QCOW2Error.Code = if case .decoderUnavailable = error.kind { .io } else { .corrupt }
                throw QCOW2Error(code, "\(path): the compressed cluster at \(hostOffset) \(error)")
            }
        }
    }

    /// Reads a table of big-endian 64-bit entries (L1 or L2).
    static func readTable(_ file: any RandomAccessImage, at offset: UInt64, entries: Int) throws(QCOW2Error) -> [UInt64]
    {
        // Read straight into the table and swapped in place: a chain of a thousand images reads thousands of tables,
        // and a copy of each through a byte array would be most of the cost of opening it.
        var table = [UInt64](repeating: 0, count: entries)
        let result = table.withUnsafeMutableBytes { raw in
            Result { () throws(QCOW2Error) in try file.read(into: raw, at: offset) }
        }
        try result.get()
        table.withUnsafeMutableBufferPointer { entries in
            for index in entries.indices { entries[index] = UInt64(bigEndian: entries[index]) }
        }
        return table
    }

    /// Reads the fixed header first, then the first cluster (or the whole file if shorter), which holds
    /// the header extensions and backing file name that `QCOW2Header.parse` needs.
    private static func readHeader(_ file: any RandomAccessImage) throws(QCOW2Error) -> QCOW2Header {
        let fixed = try file.read(count: Int(min(UInt64(QCOW2Header.minimumReadLength), file.size)), at: 0)
        let reader = BigEndianReader(fixed)
        guard fixed.count >= 72, try reader.u32(at: 0) == QCOW2Header.magic else {
            return try QCOW2Header.parse(fixed, fileSize: file.size)  // throws .notQCOW2
        }
        try rejectOffsetsThatOverflow(reader)
        let clusterBits = try reader.u32(at: 20)
        // An out-of-range cluster size is rejected by the parser; hand it the fixed header only.
        let clusterSize = (9...21).contains(clusterBits) ? UInt64(1) << UInt64(clusterBits) : UInt64(fixed.count)
        let firstCluster = try file.read(count: Int(min(clusterSize, file.size)), at: 0)
        return try QCOW2Header.parse(firstCluster, fileSize: file.size)
    }

    /// Offsets so large that the header parser's own bounds arithmetic would overflow (and trap) are
    /// refused here first: a hostile header must be an error, not a crash.
    private static func rejectOffsetsThatOverflow(_ reader: BigEndianReader) throws(QCOW2Error) {
        let backingFileOffset = try reader.u64(at: 8)
        guard backingFileOffset <= UInt64(Int32.max) else {
            throw QCOW2Error(.corrupt, "the backing file name offset \(backingFileOffset) is outside the first cluster")
        }
        let l1Size = UInt64(try reader.u32(at: 36))
        let l1TableOffset = try reader.u64(at: 40)
        guard l1TableOffset <= UInt64.max - l1Size * 8 else {
            throw QCOW2Error(.corrupt, "the L1 table offset \(l1TableOffset) is past any possible end of file")
        }
    }
}
