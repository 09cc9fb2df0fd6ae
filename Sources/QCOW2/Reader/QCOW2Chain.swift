/// A qcow2 image with its backing files, read as the single disk the guest sees.
///
/// Read-only and safe to use from several threads at once: reads, maps and statistics only share the
/// open files and the layers' bounded caches. Reads block on `pread`, so callers run them off Swift's
/// cooperative threads.
public final class QCOW2Chain: Sendable {
    /// The images of the chain, the top (the one opened) first and the base last.
    public let layers: [Layer]
    let images: [LayerImage]

    /// Opens the image at `path` and every backing file below it, by qemu's rules.
    ///
    /// `format` is the top image's format. It is not probed: a qcow2 image with a damaged magic must be
    /// an error, not a raw disk of garbage. A backing file's format is the one its overlay records, or
    /// probed if it records none; a relative backing name is relative to the folder of the image naming it, and
    /// symbolic links are followed. A FIFO, a socket or a folder is never opened (`.io` for the top image), nor a
    /// block or character device unless `allowDevices`. Throws `.backingChain` for a loop, a chain deeper than 64
    /// images or a backing file that cannot be opened, and the image's own errors otherwise (`.io` if the top
    /// image cannot be opened).
    ///
    /// This is for images the caller chose, which may name any file. A repository's images are opened with
    /// ``init(exactly:)``, which reads only the files the repository says make up the chain.
    public convenience init(path: String, format: Layer.Format = .qcow2, allowDevices: Bool = false)
        throws(QCOW2Error)
    {
        var opener = BackingChainOpener(allowDevices: allowDevices)
        try opener.open(path: path, format: format)
        self.init(layers: opener.layers, images: opener.images)
    }

    /// Opens the image at `path` and its backing chain; the same as `init(path:format:allowDevices:)`.
    public static func open(path: String, format: Layer.Format = .qcow2, allowDevices: Bool = false)
        throws(QCOW2Error) -> QCOW2Chain
    {
        try QCOW2Chain(path: path, format: format, allowDevices: allowDevices)
    }

    init(layers: [Layer], images: [LayerImage]) {
        self.layers = layers
        self.images = images
    }

    /// The virtual size of the disk: the top image's, whatever the sizes of its backing files.
    public var size: UInt64 { layers[0].virtualSize }

    /// From now on, reads of whole aligned blocks into page-aligned buffers (data clusters, for a copy) bypass the
    /// page cache where the file system allows direct I/O, and other reads drop their pages right after: for a reader
    /// that reads each cluster once (a restore), so that the cache is not filled with pages nobody reads again. A
    /// reader that reads ranges again pays a read from the disk each time.
    public func readOnce() {
        for image in images { image.file.readsOnce() }
    }

    // MARK: Reading

    /// Fills `buffer` with the guest bytes at `offset`, at any offset and length within the disk.
    ///
    /// Throws `.invalidArgument` if the range runs past `size`, `.corrupt` if a layer's metadata points
    /// outside its file, `.io` if a read fails.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        let count = UInt64(buffer.count)
        guard offset <= size, count <= size - offset else {
            throw QCOW2Error(.invalidArgument, "cannot read \(count) bytes at \(offset): the disk has \(size) bytes")
        }
        guard count > 0 else { return }
        try read(layer: 0, range: offset..<offset + count, into: buffer)
    }

    /// Reads `count` guest bytes at `offset` into a new array; see `read(into:at:)`.
    public func read(count: Int, at offset: UInt64) throws(QCOW2Error) -> [UInt8] {
        guard count >= 0 else { throw QCOW2Error(.invalidArgument, "cannot read a negative count (\(count))") }
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(QCOW2Error) in try read(into: buffer, at: offset) }
        }
        try result.get()
        return bytes
    }

    /// Reads `range` as layer `index` sees it: its own runs, unallocated runs from the layer below, and
    /// zeros past its end (a backing file shorter than its overlay).
    private func read(layer index: Int, range: Range<UInt64>, into buffer: UnsafeMutableRawBufferPointer)
        throws(QCOW2Error)
    {
        let image = images[index]
        let covered = max(range.lowerBound, min(range.upperBound, image.virtualSize))
        if range.lowerBound < covered {
            try image.forEachRun(in: range.lowerBound..<covered) { run throws(QCOW2Error) in
                let start = Int(run.offset - range.lowerBound)
                let part = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + Int(run.length)])
                if run.mapping == .unallocated, index + 1 < images.count {
                    try read(layer: index + 1, range: run.offset..<run.end, into: part)
                } else {
                    try image.read(run, into: part)
                }
            }
        }
        if covered < range.upperBound {
            let start = Int(covered - range.lowerBound)
            UnsafeMutableRawBufferPointer(rebasing: buffer[start...]).initializeMemory(as: UInt8.self, repeating: 0)
        }
    }

    // MARK: Mapping

    /// How each byte of `range` reads: extents that cover it exactly, in order, adjacent ones joined when
    /// their kind and deciding layer match.
    ///
    /// Walks L1 then L2 tables, so memory follows the number of extents, not the size of the range.
    /// Throws `.invalidArgument` if the range runs past `size`.
    public func map(_ range: Range<UInt64>) throws(QCOW2Error) -> [ChainExtent] {
        guard range.upperBound <= size else {
            throw QCOW2Error(.invalidArgument, "cannot map up to \(range.upperBound): the disk has \(size) bytes")
        }
        var list = ChainExtentList()
        try map(layer: 0, range: range, into: &list)
        return list.extents
    }

    private func map(layer index: Int, range: Range<UInt64>, into list: inout ChainExtentList) throws(QCOW2Error) {
        let image = images[index]
        let covered = max(range.lowerBound, min(range.upperBound, image.virtualSize))
        if range.lowerBound < covered {
            try image.forEachRun(in: range.lowerBound..<covered) { run throws(QCOW2Error) in
                switch run.mapping {
                case .data, .compressed:
                    list.append(ChainExtent(offset: run.offset, length: run.length, kind: .data, layer: index))
                case .zero:
                    list.append(ChainExtent(offset: run.offset, length: run.length, kind: .zero, layer: index))
                case .unallocated where index + 1 < images.count:
                    try map(layer: index + 1, range: run.offset..<run.end, into: &list)
                case .unallocated:
                    // A raw base's hole is the raw file's own (qemu counts it at that depth); a qcow2 base's is no
                    // layer's.
                    let decided: Int? = if case .raw = image { index } else { nil }
                    list.append(
                        ChainExtent(offset: run.offset, length: run.length, kind: .unallocated, layer: decided))
                }
            }
        }
        if covered < range.upperBound {
            list.append(
                ChainExtent(offset: covered, length: range.upperBound - covered, kind: .unallocated, layer: nil))
        }
    }
}
