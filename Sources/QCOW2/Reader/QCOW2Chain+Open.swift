#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Opens a chain from its top image down, following backing file names.
struct BackingChainOpener {
    /// Longer chains than this are refused: a generated loop through ever-new names must end somewhere. Far above any
    /// chain a backup makes (`backup --max-chain`), so that daily points kept for years still read.
    static let maximumDepth = 4096
    /// Descriptors are made room for in steps of this many images, so that a short chain changes no limit.
    static let descriptorStep = 64

    private struct FileIdentity: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    /// Whether block and character devices may be read as images (FIFOs and sockets never are).
    let allowDevices: Bool
    private(set) var layers: [QCOW2Chain.Layer] = []
    private(set) var images: [LayerImage] = []
    /// The metadata caches all images of the chain share.
    let caches = MetadataCaches()
    private var seenPaths: Set<String> = []
    private var seenFiles: Set<FileIdentity> = []

    init(allowDevices: Bool = false) {
        self.allowDevices = allowDevices
    }

    /// Opens `path` and every backing file below it.
    mutating func open(path: String, format: QCOW2Chain.Layer.Format) throws(QCOW2Error) {
        var next: (path: String, format: QCOW2Chain.Layer.Format?, namedBy: String?)? = (path, format, nil)
        while let current = next {
            next = nil
            guard images.count < Self.maximumDepth else {
                throw QCOW2Error(
                    .backingChain, "the backing chain of \(path) is deeper than \(Self.maximumDepth) images")
            }
            if images.count > 0, images.count % Self.descriptorStep == 0 {
                OpenFileLimit.makeRoom(for: Self.descriptorStep)
            }
            let file = try openFile(current.path, namedBy: current.namedBy)
            try checkNotSeen(file, namedBy: current.namedBy)
            let format: QCOW2Chain.Layer.Format
            if let named = current.format { format = named } else { format = try Self.probe(file) }
            switch format {
            case .raw:
                images.append(.raw(RawImage(file: file)))
                layers.append(
                    QCOW2Chain.Layer(
                        path: current.path, format: .raw, virtualSize: file.size, clusterSize: 512, header: nil))
            case .qcow2:
                let image = try QCOW2Image(file: file, caches: caches, layer: images.count)
                images.append(.qcow2(image))
                caches.fit(layers: images.count)
                layers.append(
                    QCOW2Chain.Layer(
                        path: current.path, format: .qcow2, virtualSize: image.virtualSize,
                        clusterSize: image.clusterSize, header: image.header))
                if let backing = image.header.backingFile {
                    next = (
                        Self.resolve(backing, relativeTo: current.path),
                        try Self.format(named: image.header.backingFormat, in: current.path), current.path
                    )
                }
            }
        }
    }

    /// A relative backing name is relative to the directory of the image that names it, as in qemu, so a
    /// chain can be moved as a whole.
    ///
    /// A repository's chain names `../<parent>/vda.qcow2` at each step, so the joined path grows by a component per
    /// image and passes PATH_MAX after about 200 points: past ``longPath`` bytes, the folder is replaced by its real
    /// path, which names the same folder (the kernel follows `..` after symbolic links too).
    static func resolve(_ name: String, relativeTo imagePath: String) -> String {
        guard !name.hasPrefix("/"), let slash = imagePath.lastIndex(of: "/") else { return name }
        let folder = String(imagePath[...slash])
        guard folder.utf8.count + name.utf8.count > longPath else { return folder + name }
        return canonicalPath(folder) + "/" + name
    }

    /// Joined backing paths longer than this are shortened (see ``resolve(_:relativeTo:)``).
    static let longPath = 1024

    /// The format the backing format extension names; nil when absent, so that the file is probed.
    private static func format(named name: String?, in path: String) throws(QCOW2Error) -> QCOW2Chain.Layer.Format? {
        guard let name else { return nil }
        guard let format = QCOW2Chain.Layer.Format(rawValue: name) else {
            throw QCOW2Error(
                .unsupported, "\(path) names a backing file in format \"\(name)\"; only raw and qcow2 are supported")
        }
        return format
    }

    /// qcow2 if the file starts with the qcow2 magic, raw otherwise.
    private static func probe(_ file: any RandomAccessImage) throws(QCOW2Error) -> QCOW2Chain.Layer.Format {
        guard file.size >= 4 else { return .raw }
        let magic = try file.read(count: 4, at: 0)
        return magic.reduce(UInt32(0)) { $0 << 8 | UInt32($1) } == QCOW2Header.magic ? .qcow2 : .raw
    }

    /// A backing file that cannot be opened is a broken chain, reported with the image that names it; the
    /// top image keeps the plain I/O error.
    private func openFile(_ path: String, namedBy overlay: String?) throws(QCOW2Error) -> any RandomAccessImage {
        do {
            return try ReadOnlyFile(path: path, allowingDevices: allowDevices)
        } catch {
            guard let overlay else { throw error }
            throw QCOW2Error(
                .backingChain, "the backing file \(path) of \(overlay) cannot be opened: \(error.message)", cause: error
            )
        }
    }

    /// Refuses a file already in the chain, by resolved path or by device and inode (a hard link or a
    /// bind mount reaches the same file under another name).
    private mutating func checkNotSeen(_ file: any RandomAccessImage, namedBy overlay: String?) throws(QCOW2Error) {
        let canonical = Self.canonicalPath(file.path)
        let isNewPath = seenPaths.insert(canonical).inserted
        let isNewFile = seenFiles.insert(FileIdentity(device: file.device, inode: file.inode)).inserted
        guard isNewPath, isNewFile else {
            throw QCOW2Error(
                .backingChain,
                "the backing chain loops: \(overlay ?? file.path) names \(file.path), already in the chain")
        }
    }

    static func canonicalPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
