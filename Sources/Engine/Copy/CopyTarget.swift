import QCOW2

/// What a copy writes: a new sparse raw file or one updated in place, a new standalone qcow2 image or an overlay
/// over a backing image; with the image's file digest and the disk's block hashes computed as it is written, or not.
///
/// Whatever it is, the target is written so that a failure leaves nothing that looks like a good copy: a new file
/// appears at its path only once complete and flushed, and a raw file updated in place is marked incomplete until
/// it is (see ``RawFileTarget`` and ``QCOW2FileTarget``).
public struct CopyTarget: Sendable {
    /// How the target is laid out.
    public enum Layout: Sendable {
        /// A new sparse raw file: a full copy.
        case raw
        /// The existing raw file, of the source's size, updated in place with what the source marks dirty;
        /// `update` says which update in the marker left while it runs (``UpdateMarker``).
        case rawUpdate(describing: String)
        /// A new qcow2 image: standalone (a full copy), or over `backing` an overlay holding what the source marks
        /// dirty (an incremental).
        case qcow2(backing: Backing?)
    }

    /// The image an overlay is backed by.
    public enum Backing: Sendable {
        /// The image at `path`, opened by qemu's rules once the source's size is known, and refused when larger
        /// than the source (``QCOW2FileTarget/Backing/inspect(_:size:for:allowDevices:)``).
        case image(path: String, allowDevices: Bool)
        /// An image the caller opened and accepted (``QCOW2FileTarget/Backing/open(_:for:allowDevices:)``).
        case opened(QCOW2FileTarget.Backing)
    }

    /// The file the copy makes or updates.
    public var path: String
    /// How it is laid out.
    public var layout: Layout
    /// Whether an existing file at ``path`` may be replaced by a new one.
    public var replacing: Bool
    /// Whether a qcow2 image's file digest is computed as it is written (``CopySummary/imageDigest``).
    public var digestsImage = false
    /// Whether the disk's block hashes are computed as they are written (``CopySummary/blockHashes``).
    public var hashesBlocks = false
    /// For an incremental copy with ``hashesBlocks``: the block hashes of what the target holds before the copy (the
    /// previous point's). Without them an incremental's block hashes cannot be known, and none are given.
    public var previousBlockHashes: BlockHashTable?
    /// For a qcow2 layout: how its data clusters are stored (compressed each on its own, or not).
    public var compression: ClusterCompression = .none
    /// Whether a failed copy's message says what it left at ``path`` (`pullback copy`'s wording).
    public var explainsFailure = false
    /// For a qcow2 layout: makes the object the image is written into instead of a new file at ``path`` (which then
    /// only names it), given the most bytes the image file can take. Nothing is visible there until the copy
    /// succeeds; a failed copy discards it.
    public var output: ImageOutputMaker?

    /// Makes the output a qcow2 image is written into, given an upper bound of its file size.
    public typealias ImageOutputMaker = @Sendable (_ maximumFileSize: UInt64) throws(CopyError) -> any ImageOutput

    /// A target of `layout` at `path`.
    public init(_ path: String, layout: Layout, replacing: Bool = false) {
        self.path = path
        self.layout = layout
        self.replacing = replacing
    }

    /// A new sparse raw file at `path`, replacing an existing file only when `replacing`.
    public static func raw(_ path: String, replacing: Bool = false) -> CopyTarget {
        CopyTarget(path, layout: .raw, replacing: replacing)
    }

    /// A new qcow2 image written into the output `output` makes (an object of a store), named `name` in messages:
    /// standalone, or an overlay over `backing`, an image the caller opened.
    public static func qcow2(
        into output: @escaping ImageOutputMaker, named name: String, over backing: QCOW2FileTarget.Backing? = nil
    ) -> CopyTarget {
        var target = CopyTarget(name, layout: .qcow2(backing: backing.map { .opened($0) }))
        target.output = output
        return target
    }

    /// The existing raw file at `path` updated in place; `update` is written in its update marker.
    public static func rawUpdate(_ path: String, describing update: String) -> CopyTarget {
        CopyTarget(path, layout: .rawUpdate(describing: update))
    }

    /// A new standalone qcow2 image at `path`, replacing an existing file only when `replacing`.
    public static func qcow2(_ path: String, replacing: Bool = false) -> CopyTarget {
        CopyTarget(path, layout: .qcow2(backing: nil), replacing: replacing)
    }

    /// A new sparse raw file or standalone qcow2 image at `path`, by `format`.
    public static func new(_ path: String, format: TargetFormat, replacing: Bool = false) -> CopyTarget {
        switch format {
        case .raw: .raw(path, replacing: replacing)
        case .qcow2: .qcow2(path, replacing: replacing)
        }
    }

    /// A new qcow2 overlay at `path` over `backing`, replacing an existing file only when `replacing`.
    public static func overlay(_ path: String, over backing: Backing, replacing: Bool = false) -> CopyTarget {
        CopyTarget(path, layout: .qcow2(backing: backing), replacing: replacing)
    }

    /// This target, its file digest computed as it is written.
    public func digested() -> CopyTarget {
        var target = self
        target.digestsImage = true
        return target
    }

    /// This target, its block hashes computed as they are written over `previous` (for an incremental).
    public func hashingBlocks(over previous: BlockHashTable?) -> CopyTarget {
        var target = self
        target.hashesBlocks = true
        target.previousBlockHashes = previous
        return target
    }

    /// Full, or incremental when the target already holds the previous point (updated in place, or an overlay).
    public var mode: CopyMode {
        switch layout {
        case .raw, .qcow2(backing: nil): .full
        case .rawUpdate, .qcow2(backing: .some): .incremental
        }
    }

    /// The target's format.
    public var format: TargetFormat {
        switch layout {
        case .raw, .rawUpdate: .raw
        case .qcow2: .qcow2
        }
    }
}
