import FileIO
import SystemPackage

/// The folder store stages a group in a folder of its own and publishes it with one rename (see ``ObjectStore``).
extension FolderStore {
    public var writesGroupsInPlace: Bool { false }

    public func beginGroup(_ group: ObjectKey, stagingAt staging: ObjectKey) throws(StoreError) -> ObjectKey {
        guard let parent = try parent(of: staging, creating: true) else {
            throw StoreError(.io, "cannot create the folder of \(location(of: staging))")
        }
        defer { withExtendedLifetime(parent) {} }  // keeps its descriptor, named by path below
        do throws(Errno) {
            try FilePaths.makeFolder(parent.entryPath(staging.name), permissions: Self.folderPermissions)
        } catch .fileExists {
            throw StoreError(.alreadyExists, "\(parent.location(of: staging.name)) exists already")
        } catch {
            throw StoreError(failed: "create", parent.location(of: staging.name), error)
        }
        return staging
    }

    public func publish(_ written: ObjectKey, as group: ObjectKey, replacing: Bool) throws(StoreError) {
        precondition(written.parent == group.parent, "a staged group is renamed within its folder")
        guard let parent = try parent(of: group),
            let staged = try parent.folder(named: written.name, creating: false)
        else { throw StoreError(.io, "\(location(of: written)) vanished before it was published") }
        defer { withExtendedLifetime(parent) {} }  // keeps its descriptor, named by path below
        // Whoever wrote them and whatever the umask, the group's files are private before it is visible.
        _ = try? Self.makePrivate(entriesOf: staged, depth: 0)
        try staged.sync()
        do throws(Errno) {
            if replacing {
                try FilePaths.exchange(parent.entryPath(written.name), with: parent.entryPath(group.name))
            } else {
                try FilePaths.rename(parent.entryPath(written.name), to: parent.entryPath(group.name))
            }
        } catch {
            if replacing, error == .invalidArgument {
                throw StoreError(
                    .unsupported,
                    "the file system of \(parent.location) cannot swap two folders atomically (renameat2 RENAME_EXCHANGE)",
                    cause: error)
            }
            throw StoreError(failed: "rename \(location(of: written)) to", location(of: group), error)
        }
        // Visible from here on. If this flush fails and the machine then crashes, the rename may be lost, and the
        // group is as it was before.
        try? parent.sync()
    }

    public func withdraw(_ group: ObjectKey, to staging: ObjectKey, commit: String) throws(StoreError) -> ObjectKey {
        precondition(group.parent == staging.parent, "a group is withdrawn within its folder")
        guard let parent = try parent(of: group) else {
            throw StoreError(.io, "\(location(of: group)) is not there")
        }
        defer { withExtendedLifetime(parent) {} }  // keeps its descriptor, named by path below
        do throws(Errno) {
            try FilePaths.rename(parent.entryPath(group.name), to: parent.entryPath(staging.name))
        } catch {
            throw StoreError(failed: "rename \(location(of: group)) to", location(of: staging), error)
        }
        try parent.sync()
        return staging
    }
}
