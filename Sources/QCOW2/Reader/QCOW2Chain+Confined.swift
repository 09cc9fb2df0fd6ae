import UntrustedText

extension QCOW2Chain {
    /// The most images a chain may have, whichever way it is opened.
    public static var maximumLayers: Int { BackingChainOpener.maximumDepth }

    /// One image of a chain whose files are all known before any is opened, as in a backup repository: where the
    /// image is, and the backing file name its header must record.
    public struct ExpectedLayer: Sendable, Equatable {
        /// The image's path, built by the caller. Opened as it is: a symbolic link there is refused.
        public var path: String
        /// The backing file name the image's header must record, byte for byte, with backing format `qcow2`; nil
        /// for the base of the chain, which must record none.
        public var backingName: String?
        /// How to open the image when it is not a local file at ``path`` (an object of a store, ``path`` then being
        /// its name for messages); nil opens the file.
        package var opener: (@Sendable () throws(QCOW2Error) -> any RandomAccessImage)?
        /// Told of every byte read from the image, when set.
        package var observer: (any ImageReadObserver)?

        /// Creates the description of one expected image.
        public init(path: String, backingName: String?) {
            self.path = path
            self.backingName = backingName
        }

        /// The description of an image opened by `opener` rather than from a file; `name` names it in messages.
        package init(
            name: String, backingName: String?,
            opener: @escaping @Sendable () throws(QCOW2Error) -> any RandomAccessImage
        ) {
            self.path = name
            self.backingName = backingName
            self.opener = opener
        }

        /// Equal when they name the same image with the same expected backing name, however it is opened.
        public static func == (a: ExpectedLayer, b: ExpectedLayer) -> Bool {
            a.path == b.path && a.backingName == b.backingName
        }

        /// Opens the image: through its opener, or as a file reached without a symbolic link; with its observer
        /// when it has one.
        func open() throws(QCOW2Error) -> any RandomAccessImage {
            let image =
                if let opener { try opener() } else {
                    try ReadOnlyFile(path: path, followingSymlinks: false, allowingDevices: false)
                }
            guard let observer else { return image }
            return ObservedImage(image, observer: observer)
        }
    }

    /// Opens exactly the images `expected`, top first, as one chain, and nothing else.
    ///
    /// No name read from an image is ever opened: layer `i + 1` is read below layer `i` because the caller says
    /// so, and layer `i`'s header must name it as the caller expects. Each image must be a regular qcow2 file
    /// reached without a symbolic link (no FIFO, device or folder); each header's backing file name must be
    /// byte for byte the layer's `backingName`, with backing format `qcow2` (never raw, never guessed), and the
    /// last layer must have no backing file. Throws `.backingChain` naming the image and what it names instead
    /// when a header disagrees or a lower image cannot be opened, `.invalidArgument` for an empty list, a list
    /// longer than ``maximumLayers`` images or one whose last layer expects a backing file, and the image's own errors otherwise.
    public convenience init(exactly expected: [ExpectedLayer]) throws(QCOW2Error) {
        guard let base = expected.last else {
            throw QCOW2Error(.invalidArgument, "a chain needs at least one image")
        }
        guard expected.count <= BackingChainOpener.maximumDepth else {
            throw QCOW2Error(
                .invalidArgument,
                "the chain of \(expected[0].path) has \(expected.count) images; at most \(BackingChainOpener.maximumDepth) can be read"
            )
        }
        guard base.backingName == nil, expected.dropLast().allSatisfy({ $0.backingName != nil }) else {
            throw QCOW2Error(
                .invalidArgument, "the chain of \(expected[0].path) must name a backing file for all but its last image"
            )
        }
        OpenFileLimit.makeRoom(for: expected.count)
        let caches = MetadataCaches()
        caches.fit(layers: expected.count)
        var layers: [Layer] = []
        var images: [LayerImage] = []
        var seen: Set<[UInt64]> = []
        for (index, layer) in expected.enumerated() {
            let file: any RandomAccessImage
            do {
                file = try layer.open()
            } catch {
                guard index > 0 else { throw error }
                throw QCOW2Error(
                    .backingChain,
                    "the backing file \(layer.path) of \(expected[index - 1].path) cannot be opened: \(error.message)",
                    cause: error)
            }
            guard seen.insert([file.device, file.inode]).inserted else {
                throw QCOW2Error(
                    .backingChain, "the backing chain loops: \(layer.path) is already in the chain under another name")
            }
            let image = try QCOW2Image(file: file, caches: caches, layer: index)
            try Self.checkBacking(of: image, expected: layer)
            images.append(.qcow2(image))
            layers.append(
                Layer(
                    path: layer.path, format: .qcow2, virtualSize: image.virtualSize, clusterSize: image.clusterSize,
                    header: image.header))
        }
        self.init(layers: layers, images: images)
    }

    /// Refuses an image whose header names anything but the expected backing file, in any format but qcow2.
    private static func checkBacking(of image: QCOW2Image, expected: ExpectedLayer) throws(QCOW2Error) {
        let header = image.header
        // Compared as bytes, not as Strings (which are equal when canonically equivalent); the stored length
        // catches bytes that were not UTF-8 and were replaced when the name was decoded.
        let recorded = header.backingFile.map { Array($0.utf8) }
        let wanted = expected.backingName.map { Array($0.utf8) }
        let sameName = recorded == wanted && (recorded == nil || Int(header.backingFileSize) == recorded?.count)
        guard sameName else {
            let names =
                header.backingFile.map { "names backing file \(UntrustedText.escaped($0))" } ?? "has no backing file"
            let allowed =
                expected.backingName.map { "may only be backed by \(UntrustedText.escaped($0))" }
                ?? "may only be standalone (no backing file)"
            throw QCOW2Error(.backingChain, "\(image.path) \(names); this image \(allowed)")
        }
        if let name = header.backingFile, header.backingFormat != QCOW2Chain.Layer.Format.qcow2.rawValue {
            let format =
                header.backingFormat.map { "format \(UntrustedText.escaped($0))" }
                ?? "no format (it would be guessed)"
            throw QCOW2Error(
                .backingChain,
                "\(image.path) names its backing file \(UntrustedText.escaped(name)) with \(format); this image's backing file must be qcow2"
            )
        }
    }
}
