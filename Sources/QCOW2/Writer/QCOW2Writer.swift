import Synchronization
import SystemPackage

/// Writes a qcow2 version 3 image in one pass, as data arrives, in any order.
///
/// Data clusters are appended to the file as they are written; each guest cluster is placed once. L2
/// tables stay in memory only until ``settle(below:)`` says their range is complete, then they are
/// appended too; ``finalize()`` writes the L1 table, the refcount structures (every cluster is used once,
/// so refcounts are all 1 and need no bookkeeping) and finally the header. Until then the file has no
/// qcow2 header at all, so nothing opens a half-written image as a good one.
///
/// With a backing file, ranges zeroed through ``zeroClusters(at:length:)`` become zero clusters that hide
/// the backing file's data; without one they stay unallocated, which reads as zeros.
public final class QCOW2Writer: Sendable {
    /// The file being written.
    public var path: String { file.path }
    /// The image's virtual size.
    public let size: UInt64
    /// Bytes per cluster.
    public let clusterSize: Int
    /// The backing file name stored in the header, if any.
    public let backingFile: String?

    /// How data clusters are stored: compressed through ``writeCompressed(_:from:at:)``, or not.
    public let compression: ClusterCompression

    private let template: QCOW2Header
    let file: any ImageSink
    let state: Mutex<State>

    struct State {
        /// The next free host cluster; cluster 0 holds the header.
        var nextCluster: UInt64 = 1
        var l1: [UInt64]
        /// L2 tables not yet written, by L1 index.
        var pendingTables: [Int: [UInt64]] = [:]
        var finalized = false
        var closed = false
        var digest: SplitDigest?
        /// The host cluster that compressed clusters are being packed into, and what it holds so far; written once
        /// full, or when anything else is placed (which closes it).
        var tail: (cluster: UInt64, bytes: [UInt8])?
        /// Refcounts of the host clusters compressed clusters share, in runs of adjacent clusters; every other
        /// cluster is used once.
        var packed: [PackedRun] = []
    }

    static let copiedFlag: UInt64 = 1 << 63
    static let zeroFlag: UInt64 = 1

    /// Creates a new image file at `path`, which must not exist (not even as a symbolic link), with exactly
    /// `permissions` (owner read and write by default) whatever the umask.
    ///
    /// `backingFile` is stored as given (pass a path relative to the image's directory so the pair can be
    /// moved); its format is recorded as `backingFormat`. A `size` above ``maximumSize(clusterBits:)`` is
    /// refused. With `digesting`, the file is hashed as it is written (see ``digest``).
    public convenience init(
        creating path: String, size: UInt64, backingFile: String? = nil, backingFormat: String = "qcow2",
        clusterBits: Int = 16, permissions: FilePermissions = [.ownerRead, .ownerWrite], digesting: Bool = false,
        compression: ClusterCompression = .none
    ) throws(QCOW2Error) {
        let header = try Self.header(
            size: size, backingFile: backingFile, backingFormat: backingFormat, clusterBits: clusterBits,
            compression: compression)
        let file = try HostFile.create(
            path, permissions: permissions,
            digest: digesting ? AppendDigest(headLength: header.clusterSize, piecewise: true) : nil)
        self.init(header: header, sink: file, compression: compression)
    }

    /// Writes a new image into `output` (an object of a store) rather than a file, as ``init(creating:size:backingFile:backingFormat:clusterBits:permissions:digesting:)``
    /// does: ``finalize()`` finishes the output, and ``close()`` before that discards it.
    public convenience init(
        into output: any ImageOutput, size: UInt64, backingFile: String? = nil, backingFormat: String = "qcow2",
        clusterBits: Int = 16, digesting: Bool = false, compression: ClusterCompression = .none
    ) throws(QCOW2Error) {
        let header = try Self.header(
            size: size, backingFile: backingFile, backingFormat: backingFormat, clusterBits: clusterBits,
            compression: compression)
        let digest = digesting ? AppendDigest(headLength: header.clusterSize, piecewise: true) : nil
        self.init(header: header, sink: OutputSink(output, digest: digest), compression: compression)
    }

    private init(header: QCOW2Header, sink: any ImageSink, compression: ClusterCompression) {
        self.compression = compression
        self.size = header.size
        self.clusterSize = header.clusterSize
        self.backingFile = header.backingFile
        self.template = header
        self.file = sink
        self.state = Mutex(State(l1: Array(repeating: 0, count: Int(header.l1Size))))
    }

    /// The header of a new image, checked: cluster bits in range, a size the L1 table can map, a backing name that
    /// fits the header cluster.
    private static func header(
        size: UInt64, backingFile: String?, backingFormat: String, clusterBits: Int, compression: ClusterCompression
    ) throws(QCOW2Error) -> QCOW2Header {
        guard (9...21).contains(clusterBits) else {
            throw QCOW2Error(.invalidArgument, "cluster bits \(clusterBits) is outside 9-21")
        }
        let maximum = Self.maximumSize(clusterBits: clusterBits)
        guard size <= maximum else {
            throw QCOW2Error(
                .invalidArgument,
                "a virtual size of \(size) bytes is more than the \(maximum) bytes a qcow2 image with \(1 << clusterBits)-byte clusters can hold"
            )
        }
        var header = QCOW2Header()
        header.clusterBits = UInt32(clusterBits)
        header.size = size
        let bytesPerTable = UInt64(header.clusterSize) * UInt64(header.l2Entries)
        // Below the maximum, so at most maximumL1Bytes / 8 entries.
        header.l1Size = UInt32(size / bytesPerTable + (size % bytesPerTable == 0 ? 0 : 1))
        header.backingFile = backingFile
        header.backingFormat = backingFile == nil ? nil : backingFormat
        header.compressionType = compression.headerType
        if header.compressionType != 0 { header.incompatibleFeatures |= QCOW2Header.Incompatible.compressionType }
        guard header.encoded().count <= header.clusterSize else {
            throw QCOW2Error(.invalidArgument, "the backing file name is too long for the header cluster")
        }
        return header
    }

    /// The largest virtual size an image with clusters of `1 << clusterBits` bytes can have: the L1 table
    /// that maps it must fit qcow2's limit of 32 MiB (qemu's too), 4 Mi L2 tables. With the default 64 KiB
    /// clusters that is 2 PiB. `clusterBits` is from 9 to 21, as for the initializer.
    public static func maximumSize(clusterBits: Int = 16) -> UInt64 {
        precondition((9...21).contains(clusterBits), "cluster bits \(clusterBits) is outside 9-21")
        let clusterSize = UInt64(1) << UInt64(clusterBits)
        return UInt64(QCOW2Header.maximumL1Bytes / 8) * (clusterSize / 8) * clusterSize
    }

    // MARK: Data

    /// Writes whole clusters at `offset` (cluster-aligned); `bytes.count` is a multiple of the cluster
    /// size, except for a write that ends in the image's last cluster. Each cluster may be written once.
    public func writeClusters(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        let host = try placeClusters(bytes, at: offset)
        try writePlaced(bytes, at: host)
    }

    /// The first half of ``writeClusters(_:at:)``: maps the clusters at `offset` to the next free host clusters and,
    /// when digesting, hashes `bytes` there, in file order whichever thread calls. Returns where
    /// ``writePlaced(_:at:)`` must write them. The halves may run on two threads, so that hashing a buffer overlaps
    /// writing the one before it. `pieceHashes`, the SHA-256 of each whole 64 KiB piece of `bytes` when the caller has
    /// them, spares hashing those pieces again (``SplitDigest/piecewise``).
    package func placeClusters(
        _ bytes: UnsafeRawBufferPointer, at offset: UInt64, pieceHashes: UnsafeRawBufferPointer? = nil
    ) throws(QCOW2Error) -> UInt64 {
        let count = UInt64(bytes.count)
        try checkAligned(offset, count)
        guard count > 0 else { return 0 }
        let clusters = (count + UInt64(clusterSize) - 1) / UInt64(clusterSize)
        let digest = file.digest
        return try state.withLock { state throws(QCOW2Error) -> UInt64 in
            try closeTail(&state)
            let first = state.nextCluster
            for index in 0..<clusters {
                let hostOffset = (first + index) * UInt64(clusterSize)
                try set(&state, guestOffset: offset + index * UInt64(clusterSize), entry: hostOffset | Self.copiedFlag)
            }
            state.nextCluster += clusters
            // Under the lock, so that the hash follows the file's order.
            digest?.wrote(bytes, at: first * UInt64(clusterSize), pieceHashes: pieceHashes)
            return first * UInt64(clusterSize)
        }
    }

    /// The second half of ``writeClusters(_:at:)``: writes `bytes` where ``placeClusters(_:at:)`` placed them.
    package func writePlaced(_ bytes: UnsafeRawBufferPointer, at host: UInt64) throws(QCOW2Error) {
        guard !bytes.isEmpty else { return }
        try file.write(bytes, at: host, hashing: false)
    }

    /// Makes whole clusters read as zeros: zero clusters over a backing file, nothing without one.
    public func zeroClusters(at offset: UInt64, length: UInt64) throws(QCOW2Error) {
        try checkAligned(offset, length)
        guard backingFile != nil, length > 0 else { return }
        try state.withLock { state throws(QCOW2Error) in
            var guest = offset
            while guest < offset + length {
                try set(&state, guestOffset: guest, entry: Self.zeroFlag)
                guest += UInt64(clusterSize)
            }
        }
    }

    func checkAligned(_ offset: UInt64, _ length: UInt64) throws(QCOW2Error) {
        let mask = UInt64(clusterSize - 1)
        // Whole clusters, except that a range may stop anywhere inside the last cluster: a source may end
        // before the image does (qcow2 sizes are whole sectors), and the rest of that cluster reads zeros.
        let lastClusterStart = size == 0 ? 0 : (size - 1) & ~mask
        // `length <= size - offset` rather than `offset + length <= size`: the sum of a hostile pair overflows.
        guard offset & mask == 0, offset <= size, length <= size - offset,
            length & mask == 0 || offset + length > lastClusterStart
        else {
            throw QCOW2Error(
                .invalidArgument,
                "range of \(length) bytes at \(offset) is not whole clusters of \(clusterSize) bytes within \(size)")
        }
    }

    func set(_ state: inout State, guestOffset: UInt64, entry: UInt64) throws(QCOW2Error) {
        let cluster = guestOffset / UInt64(clusterSize)
        let tableIndex = Int(cluster / UInt64(template.l2Entries))
        let entryIndex = Int(cluster % UInt64(template.l2Entries))
        guard state.l1[tableIndex] == 0 else {
            throw QCOW2Error(.invalidArgument, "cluster at \(guestOffset) written after its range was settled")
        }
        var table =
            state.pendingTables.removeValue(forKey: tableIndex) ?? Array(repeating: 0, count: template.l2Entries)
        defer { state.pendingTables[tableIndex] = table }
        guard table[entryIndex] == 0 else {
            throw QCOW2Error(.invalidArgument, "cluster at \(guestOffset) written twice")
        }
        table[entryIndex] = entry
    }

    // MARK: Metadata

    /// Writes out the L2 tables whose whole range lies below `offset`: the caller promises to write
    /// nothing there any more. This is what keeps memory bounded whatever the image size.
    public func settle(below offset: UInt64) throws(QCOW2Error) {
        let bytesPerTable = UInt64(clusterSize) * UInt64(template.l2Entries)
        try state.withLock { state throws(QCOW2Error) in
            for tableIndex in state.pendingTables.keys.sorted()
            where min(UInt64(tableIndex + 1) * bytesPerTable, size) <= offset {
                try writeTable(&state, tableIndex)
            }
        }
    }

    private func writeTable(_ state: inout State, _ tableIndex: Int) throws(QCOW2Error) {
        guard let table = state.pendingTables.removeValue(forKey: tableIndex) else { return }
        try closeTail(&state)
        let host = state.nextCluster * UInt64(clusterSize)
        state.nextCluster += 1
        try file.write(Self.bigEndian(table), at: host)
        state.l1[tableIndex] = host | Self.copiedFlag
    }

    /// Writes the remaining L2 tables, the L1 table, the refcounts and the header, and flushes the file.
    /// The image is valid only once this returns.
    public func finalize() throws(QCOW2Error) {
        try state.withLock { state throws(QCOW2Error) in
            guard !state.finalized else { throw QCOW2Error(.invalidArgument, "the image is finalized already") }
            try closeTail(&state)
            for tableIndex in state.pendingTables.keys.sorted() { try writeTable(&state, tableIndex) }

            var header = template
            let l1Clusters = UInt64((state.l1.count * 8 + clusterSize - 1) / clusterSize)
            header.l1TableOffset = state.l1.isEmpty ? 0 : state.nextCluster * UInt64(clusterSize)
            if !state.l1.isEmpty { try file.write(Self.bigEndian(state.l1), at: header.l1TableOffset) }
            state.nextCluster += l1Clusters

            let refcounts = RefcountLayout(
                usedClusters: state.nextCluster, clusterSize: clusterSize, packed: state.packed)
            try refcounts.write(to: file, startingAt: state.nextCluster)
            header.refcountTableOffset = state.nextCluster * UInt64(clusterSize)
            header.refcountTableClusters = UInt32(refcounts.tableClusters)
            state.nextCluster = refcounts.totalClusters

            try file.truncate(to: state.nextCluster * UInt64(clusterSize))
            try file.sync()  // everything the header points to is on disk before the header is
            try file.write(header.encoded(), at: 0)
            try file.sync()
            try file.seal()
            state.finalized = true
            state.digest = file.digest?.finish(fileSize: state.nextCluster * UInt64(clusterSize))
        }
    }

    /// The finalized file's digest, its header cluster apart from the rest, hashed as it was written (data where it
    /// is placed, so in file order from any number of threads); nil unless the writer was made `digesting`.
    public var digest: SplitDigest? { state.withLock { $0.digest } }

    /// Closes the file, after ``finalize()`` or after giving up on the image. Later calls do nothing: a second
    /// close could close a descriptor that another thread has opened under the same number since.
    public func close() {
        let wasOpen = state.withLock { state in
            defer { state.closed = true }
            return !state.closed
        }
        if wasOpen { file.close() }
    }

    /// Bytes the image file occupies so far (data, tables and, once finalized, the rest).
    public var fileSize: UInt64 { state.withLock { $0.nextCluster } * UInt64(clusterSize) }

    static func bigEndian(_ entries: [UInt64]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: entries.count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for (index, entry) in entries.enumerated() { BigEndianWriter.put(entry, into: raw, at: index * 8) }
        }
        return bytes
    }
}
