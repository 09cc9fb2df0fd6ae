import Storage

/// A backup point being written: never listed and never a parent until committed. In a folder store it is the
/// staging folder `<id>.partial`.
public final class PendingPoint: Sendable {
    /// The id the point will have.
    public let id: String
    /// The folder being written (`<id>.partial`), where images are made.
    public let folder: String
    /// The domain the point belongs to.
    let domain: String
    /// The prefix its objects are written under (see ``Storage/ObjectStore/beginGroup(_:stagingAt:)``).
    let key: ObjectKey
    let store: any ObjectStore

    init(id: String, domain: String, key: ObjectKey, store: any ObjectStore) {
        self.id = id
        self.domain = domain
        self.key = key
        self.store = store
        self.folder = store.localPath(of: key) ?? store.location(of: key)
    }

    /// Whether images are files at ``imagePath(for:)`` (a folder store), or objects written through
    /// ``imageOutput(for:maximumSize:)`` (a bucket).
    public var imagesAreFiles: Bool { store.localPath(of: key) != nil }

    /// Where disk `target`'s image goes: `<folder>/<target>.qcow2`.
    public func imagePath(for target: String) -> String { folder + "/" + Self.imageName(for: target) }

    /// The image file name of disk `target` inside a point.
    public static func imageName(for target: String) -> String { RepositoryLayout.imageName(for: target) }

    /// Where disk `target`'s block hashes go: `<folder>/<target>.blocks`.
    public func blockHashesPath(for target: String) -> String { folder + "/" + Self.blockHashesName(for: target) }

    /// The name of disk `target`'s block hashes file inside a point.
    public static func blockHashesName(for target: String) -> String { RepositoryLayout.blockHashesName(for: target) }

    /// The object `name` of the point, to be read through the store, or nil when it is a file read by its path
    /// (``imagesAreFiles``): a sealed image is only ever read through its store.
    package func storedObject(_ name: String) throws(RepositoryError) -> StoredObject? {
        guard !imagesAreFiles else { return nil }
        return StoredObject(store: store, key: try storeStep { () throws(StoreError) in try key.appending(name) })
    }

    /// Writes a small file (domain or checkpoint XML) into the point, durably.
    public func write(_ contents: String, to name: String) throws(RepositoryError) {
        try writeFile(Array(contents.utf8), to: name)
    }

    /// Writes the file `name` (a disk's block hashes) into the point, durably, as a new object of the store.
    public func writeFile(_ bytes: [UInt8], to name: String) throws(RepositoryError) {
        try storeStep { () throws(StoreError) in try store.write(bytes, to: key.appending(name)) }
    }
}
