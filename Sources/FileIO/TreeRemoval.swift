import SystemPackage

/// One removal of a folder and everything in it, for ``FileTree``: a depth-first walk with an explicit stack of
/// open folders (no recursion), each entry removed relative to the folder listing it.
struct TreeRemoval {
    /// A folder being emptied: its listing (which owns its descriptor) and its name in the folder below it.
    private struct Frame {
        let listing: FolderListing
        let name: EntryName
        var passes = 1
    }

    /// The folder holding the tree; the caller's.
    private let parent: FileDescriptor
    private let askingTypes: Bool
    private var stack: [Frame] = []

    init(parent: FileDescriptor, askingTypes: Bool) {
        self.parent = parent
        self.askingTypes = askingTypes
    }

    /// Removes the folder `name` of the parent and everything in it. The stack's listings (and descriptors) are
    /// released when this returns or throws.
    mutating func remove(folder name: EntryName) throws(FileTreeError) {
        defer { stack.removeAll() }
        try descend(into: name, of: parent)
        while let top = stack.last {
            let entry: FolderEntry?
            do throws(Errno) { entry = try top.listing.next() } catch { throw failure("list", error) }
            if let entry {
                try removeEntry(entry, of: top.listing.folder)
            } else {
                try removeEmptied()
            }
        }
    }

    /// Removes `entry` of `folder` if it is not a folder, or starts emptying it if it is.
    private mutating func removeEntry(_ entry: FolderEntry, of folder: FileDescriptor) throws(FileTreeError) {
        var kind = entry.kind
        if kind == .unknown || askingTypes {
            let status: Stat?
            do throws(Errno) { status = try folder.status(ofEntry: entry.name) } catch {
                throw failure("inspect", error, entry.name)
            }
            guard let status else { return }  // gone since it was listed
            kind = status.type == .directory ? .folder : .other
        }
        if kind != .folder {
            do throws(Errno) {
                try folder.removeEntry(named: entry.name, isFolder: false)
                return
            } catch .noSuchFileOrDirectory {
                return
            } catch .isDirectory {
                // Swapped for a folder since it was listed: emptied as one.
            } catch {
                throw failure("remove", error, entry.name)
            }
        }
        guard stack.count < FileTree.maximumDepth else {
            throw FileTreeError(.tooDeep, at: stack.map(\.name) + [entry.name])
        }
        try descend(into: entry.name, of: folder)
    }

    /// Opens the folder `name` of `folder` and pushes it to be emptied. When the name is no folder any more (a
    /// racing writer swapped it for a symbolic link), only the name is removed; when it is gone, nothing happens.
    private mutating func descend(into name: EntryName, of folder: FileDescriptor) throws(FileTreeError) {
        let opened: FileDescriptor
        do throws(Errno) { opened = try folder.openFolder(named: name) } catch .noSuchFileOrDirectory {
            return
        } catch .tooManySymbolicLinkLevels, .notDirectory {
            do throws(Errno) { try folder.removeEntry(named: name, isFolder: false) } catch .noSuchFileOrDirectory {
            } catch .isDirectory {
                // A folder again: it stays in `folder`, whose removal then finds it and lists `folder` again.
            } catch {
                throw failure("remove", error, name)
            }
            return
        } catch {
            throw failure("open", error, name)
        }
        let listing: FolderListing
        do throws(Errno) { listing = try FolderListing(taking: opened) } catch { throw failure("list", error, name) }
        stack.append(Frame(listing: listing, name: name))
    }

    /// Removes the name of the folder on top of the stack, listed to its end, from the folder below it. When the
    /// folder is not empty after all (entries skipped or added while it was listed), it is listed again, up to
    /// ``FileTree/maximumPasses`` times.
    private mutating func removeEmptied() throws(FileTreeError) {
        let top = stack[stack.count - 1]
        let below = stack.count > 1 ? stack[stack.count - 2].listing.folder : parent
        do throws(Errno) {
            try below.removeEntry(named: top.name, isFolder: true)
        } catch .noSuchFileOrDirectory {
        } catch .notDirectory where stack.count > 1 {
            // The name was swapped for a link or a file while the folder was emptied. The folder went where the
            // name came from, inside the tree; the folder below is not empty then, and its next pass finds both.
        } catch .directoryNotEmpty where top.passes < FileTree.maximumPasses {
            stack[stack.count - 1].passes += 1
            top.listing.rewind()
            return
        } catch {
            throw failure("remove", error)
        }
        stack.removeLast()
    }

    /// A failed `call` on the folder on top of the stack, or on its entry `name`.
    private func failure(_ call: String, _ errno: Errno, _ name: EntryName? = nil) -> FileTreeError {
        FileTreeError(.failed(call: call, errno), at: stack.map(\.name) + (name.map { [$0] } ?? []))
    }
}
