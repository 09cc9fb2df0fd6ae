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
    /// block or character device unless `allowDevices`. Throws `.backingChain` for a loop, a chain deeper than
    /// ``maximumLayers`` images or a backing file that cannot be opened, and the image's own errors otherwise (`.io` if the top
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

    /// Opens the image at `path` as qcow2 with its backing chain when it starts with qcow2's magic, else as a raw
    /// image: how a file the user names is read, whichever format it has.
    public static func openProbing(path: String, allowDevices: Bool = false) throws(QCOW2Error) -> QCOW2Chain {
        do {
            return try QCOW2Chain(path: path, allowDevices: allowDevices)
        } catch  where error.code == .notQCOW2 {
            return try QCOW2Chain(path: path, format: .raw, allowDevices: allowDevices)
        }
    }

    /// The guest bytes resolved at a time: what one L2 table of the finest-grained layer maps (512 MiB for 64 KiB
    /// clusters), so that a region holds at most a few thousand runs of each layer.
    let regionSize: UInt64
    /// Regions already resolved, under one budget: reads of a region read no layer's tables again.
    private let resolvedRegions = BoundedCache<UInt64, [ResolvedRun]>(budget: 16 << 20)

    init(layers: [Layer], images: [LayerImage]) {
        self.layers = layers
        self.images = images
        let finest = layers.map { $0.format == .qcow2 ? $0.clusterSize : 64 << 10 }.min() ?? 64 << 10
        regionSize = UInt64(finest) * UInt64(min(finest / 8, 8192))
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
        try read(range: offset..<offset + count, into: buffer)
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

    /// Reads `range`: each resolved run from the layer that decides it, zeros where none does.
    private func read(range: Range<UInt64>, into buffer: UnsafeMutableRawBufferPointer) throws(QCOW2Error) {
        try forEachResolvedRun(in: range) { resolved throws(QCOW2Error) in
            let start = Int(resolved.run.offset - range.lowerBound)
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + Int(resolved.run.length)])
            if let layer = resolved.layer {
                try images[layer].read(resolved.run, into: part)
            } else {
                part.initializeMemory(as: UInt8.self, repeating: 0)
            }
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
        try map(range, into: &list)
        return list.extents
    }

    /// A range of a region or two goes through the resolved regions that reads use: a server maps every read it
    /// answers (to send holes as holes) and every block status, and resolving each such small range anew walks every
    /// layer each time, which on a chain of a thousand small incrementals cost ten times the copy of its base. A
    /// larger range is resolved in one pass, not region by region: a map is asked once for large ranges (a whole
    /// sparse disk of petabytes is millions of regions), and one pass walks each layer once.
    private func map(_ range: Range<UInt64>, into list: inout ChainExtentList) throws(QCOW2Error) {
        func append(_ resolved: ResolvedRun) {
            let run = resolved.run
            let kind: ChainExtent.Kind =
                switch run.mapping {
                case .data, .compressed: .data
                case .zero: .zero
                case .unallocated: .unallocated
                }
            list.append(ChainExtent(offset: run.offset, length: run.length, kind: kind, layer: resolved.layer))
        }
        if UInt64(range.count) <= 2 * regionSize {
            try forEachResolvedRun(in: range) { resolved throws(QCOW2Error) in append(resolved) }
        } else {
            for resolved in try RegionResolver.resolve(range, images: images) { append(resolved) }
        }
    }

    // MARK: Resolving

    /// Calls `body` with the resolved runs that exactly cover `range`, region by region (see ``RegionResolver``).
    private func forEachResolvedRun(in range: Range<UInt64>, _ body: (ResolvedRun) throws(QCOW2Error) -> Void)
        throws(QCOW2Error)
    {
        var offset = range.lowerBound
        while offset < range.upperBound {
            let index = offset / regionSize
            let regionEnd = min(range.upperBound, (index + 1) * regionSize)
            let runs: [ResolvedRun]
            do {
                runs = try resolvedRegion(index)
            } catch {
                // A damaged table somewhere in the region: resolve only what is asked, so that reads elsewhere in the
                // region still work and this one fails only if it touches the damage.
                runs = try RegionResolver.resolve(offset..<regionEnd, images: images)
            }
            // The first run that ends past `offset`; runs are sorted and cover the region.
            var low = 0
            var high = runs.count
            while low < high {
                let middle = (low + high) / 2
                if runs[middle].run.end <= offset { low = middle + 1 } else { high = middle }
            }
            while low < runs.count, runs[low].run.offset < regionEnd {
                var resolved = runs[low]
                resolved.run = resolved.run.cut(to: offset..<regionEnd)
                try body(resolved)
                low += 1
            }
            offset = regionEnd
        }
    }

    private func resolvedRegion(_ index: UInt64) throws(QCOW2Error) -> [ResolvedRun] {
        try resolvedRegions.value(for: index) { () throws(QCOW2Error) in
            let start = index * regionSize
            let runs = try RegionResolver.resolve(start..<min(size, start + regionSize), images: images)
            // At least a page each, so that the cache holds a few thousand regions and its eviction scan stays short.
            return (runs, max(4096, runs.count * MemoryLayout<ResolvedRun>.stride))
        }
    }
}
