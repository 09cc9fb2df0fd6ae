import SystemPackage

/// Removes a tree of files and folders through descriptors, so that a writer racing the removal cannot steer it out
/// of the tree: the one way Pullback removes a folder with something in it.
///
/// Each folder is opened relative to the one holding it (`openat` with `O_NOFOLLOW | O_DIRECTORY`), listed through
/// its descriptor, and each entry is removed relative to it (`unlinkat`); no path is ever built again from the
/// names. Swapping a folder of the tree for a symbolic link (one `renameat2(RENAME_EXCHANGE)`) at any moment then
/// changes nothing outside the tree: the link is not followed and loses only its name, and the folder already open
/// is emptied wherever its name went. What a listing reported is checked again by the call that uses the name
/// (`O_NOFOLLOW`, `EISDIR`), and an entry skipped because it changed meanwhile is found by another pass over its
/// folder, which happens when the folder's own removal finds it not empty (at most ``maximumPasses`` per folder).
///
/// Depth is bounded: a folder holds one descriptor open for each folder above it being emptied, so a tree nested
/// deeper than ``maximumDepth`` is refused (an error, the part below that depth untouched) rather than running out
/// of descriptors or stack. Pullback's trees (a point's `.partial` folder, a run folder) are one or two deep.
///
/// Nothing well kept does this instead. Foundation's `FileManager.removeItem` lists a folder and then unlinks each
/// entry by its full path, which is what a racing writer steered outside a repository. swift-nio's
/// `NIOFileSystem.removeItem` (NIOFS, as of 2.101.3) also removes each entry by a path joined from the folder's path
/// (`Libc.remove(entry.path)` in `removeItemSequentially` and `ParallelRemoval.swift`), so it has the same race.
/// swift-system's recursive removal (for its temporary paths) is not public and does not use `O_NOFOLLOW`.
package enum FileTree {
    /// The deepest nesting of folders a removal goes into.
    package static let maximumDepth = 128
    /// How many times a folder is listed before its removal gives up on entries that keep appearing in it.
    static let maximumPasses = 4

    /// Removes the entry `name` of the folder `parent` has open, and everything in it when it is a folder: nothing
    /// when nothing has the name, and only the name when it is not a real folder (a symbolic link loses its name,
    /// never what it points to). `parent` stays open and the caller's.
    package static func remove(named name: String, in parent: FileDescriptor) throws(FileTreeError) {
        try remove(named: EntryName(name), in: parent, askingTypes: false)
    }

    /// ``remove(named:in:)`` for a name as a listing reported it (``FolderListing``).
    package static func remove(named name: EntryName, in parent: FileDescriptor) throws(FileTreeError) {
        try remove(named: name, in: parent, askingTypes: false)
    }

    /// Removes the entry at `path` like ``remove(named:in:)``; the folder holding it is opened with
    /// `O_DIRECTORY | O_NOFOLLOW`, and nothing is removed when that folder does not exist.
    package static func remove(atPath path: String) throws(FileTreeError) {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        let slash = trimmed.lastIndex(of: "/")
        let name = String(slash.map { trimmed[trimmed.index(after: $0)...] } ?? trimmed)
        let parentPath = slash.map { $0 == trimmed.startIndex ? "/" : String(trimmed[..<$0]) } ?? "."
        guard !name.isEmpty, name != ".", name != ".." else {
            throw FileTreeError(.failed(call: "remove", .invalidArgument), entry: path)
        }
        let opened: FileDescriptor?
        do throws(Errno) { opened = try FilePaths.openFolder(parentPath) } catch {
            throw FileTreeError(.failed(call: "open", error), entry: parentPath)
        }
        guard let parent = opened else { return }
        defer { parent.closeAfterUse() }
        do {
            try remove(named: name, in: parent)
        } catch {
            throw error.under(parentPath)
        }
    }

    /// ``remove(named:in:)``; with `askingTypes`, what each listed entry is comes from `fstatat` whatever the
    /// listing said, as on a file system that reports every type as DT_UNKNOWN (for tests).
    static func remove(named name: EntryName, in parent: FileDescriptor, askingTypes: Bool) throws(FileTreeError) {
        let status: Stat?
        do throws(Errno) { status = try parent.status(ofEntry: name) } catch {
            throw FileTreeError(.failed(call: "inspect", error), at: [name])
        }
        guard let status else { return }
        if status.type == .directory {
            var removal = TreeRemoval(parent: parent, askingTypes: askingTypes)
            try removal.remove(folder: name)
        } else {
            do throws(Errno) { try parent.removeEntry(named: name, isFolder: false) } catch .noSuchFileOrDirectory {
            } catch .isDirectory {
                // Made a folder since it was inspected.
                var removal = TreeRemoval(parent: parent, askingTypes: askingTypes)
                try removal.remove(folder: name)
            } catch {
                throw FileTreeError(.failed(call: "remove", error), at: [name])
            }
        }
    }
}
