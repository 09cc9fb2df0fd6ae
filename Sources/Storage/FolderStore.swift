import FileIO
import SystemPackage

/// An ``ObjectStore`` in a local folder: a key is a path under the root, each component a folder or the object's
/// file. Keys stay confined to the root: every folder on the way is opened relative to the one above it with
/// `O_NOFOLLOW` (``OpenFolder``), and a symbolic link met anywhere under the root is refused, never followed (the
/// root itself may be a link, to where the space is). Files are made 0600 and folders 0700, whatever the umask.
/// A new object is written under a temporary name (`.<name>.<random>.tmp`), flushed, linked to its name (which
/// never replaces one) and its folder flushed; trees are removed through descriptors (``FileIO/FileTree``).
public struct FolderStore: ObjectStore {
    /// The mode of every file the store makes.
    public static let filePermissions = FilePermissions(rawValue: 0o600)
    /// The mode of every folder the store makes.
    public static let folderPermissions = FilePermissions(rawValue: 0o700)

    /// The store's root folder.
    public let root: String

    /// The store in the folder `root` (which need not exist yet: see ``createRoot()``).
    public init(root: String) {
        self.root = root
    }

    public func location(of key: ObjectKey?) -> String {
        key.map { root + "/" + $0.description } ?? root
    }

    public func localPath(of key: ObjectKey) -> String? {
        location(of: key)
    }

    /// The root folder, opened (following a symbolic link: the root may be one); nil when nothing is there.
    func openRoot() throws(StoreError) -> OpenFolder? {
        do throws(Errno) {
            let descriptor = try FileDescriptor.open(path: root, .readOnly, options: .directory)
            return OpenFolder(descriptor: descriptor, location: root)
        } catch .noSuchFileOrDirectory {
            return nil
        } catch {
            throw StoreError(failed: "open", root, error)
        }
    }

    /// The folder of `prefix` (the root when nil), opened one component at a time; nil when it is not there (or is
    /// an object). With `creating`, missing folders are made, the root too.
    func folder(_ prefix: ObjectKey?, creating: Bool = false) throws(StoreError) -> OpenFolder? {
        var current = try openRoot()
        if current == nil, creating {
            try createRoot()
            current = try openRoot()
        }
        guard var folder = current else { return nil }
        for component in prefix?.components ?? [] {
            guard let next = try folder.folder(named: component, creating: creating) else { return nil }
            folder = next
        }
        return folder
    }

    /// The folder holding `key`, made when `creating`; nil when it is not there.
    func parent(of key: ObjectKey, creating: Bool = false) throws(StoreError) -> OpenFolder? {
        try folder(key.parent, creating: creating)
    }
}
