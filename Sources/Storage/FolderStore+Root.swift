import FileIO
import SystemPackage

extension FolderStore {
    public func rootState() throws(StoreError) -> StoreRootState {
        let status: Stat
        do throws(Errno) { status = try Stat(FilePath(root)) } catch .noSuchFileOrDirectory {
            return .absent
        } catch {
            throw StoreError(failed: "inspect", root, error)
        }
        guard status.type == .directory else { return .notAStore }
        let names = try list(under: nil).map(\.name)
        let temporaries = names.filter { $0.hasPrefix(".") && $0.hasSuffix(".tmp") }
        return temporaries.count == names.count ? .empty(temporaries: temporaries) : .populated
    }

    public func createRoot() throws(StoreError) {
        switch try rootState() {
        case .absent:
            try Self.makeFolders(root)
        case .empty:
            // An empty folder made by someone else (mkdir under umask 022, say) becomes as private as a new one.
            do throws(Errno) { try FilePaths.setPermissions(root, Self.folderPermissions) } catch {
                throw StoreError(failed: "set the mode of", root, error)
            }
        case .notAStore:
            throw StoreError(.notAnObject, "\(root) is not a folder")
        case .populated:
            break
        }
    }

    public func makePrivate(_ prefix: ObjectKey?, depth: Int) -> Int {
        guard let rootFolder = try? openRoot() else { return 0 }
        var count = Self.tighten(rootFolder.descriptor, as: .directory) ? 1 : 0
        guard let prefix else { return count + ((try? Self.makePrivate(entriesOf: rootFolder, depth: depth)) ?? 0) }
        // The objects directly in the root (its identity), then the way down to the prefix, then under it.
        count += (try? Self.makePrivate(entriesOf: rootFolder, depth: -1)) ?? 0
        var folder = rootFolder
        for component in prefix.components {
            guard let next = try? folder.folder(named: component, creating: false) else { return count }
            if Self.tighten(next.descriptor, as: .directory) { count += 1 }
            folder = next
        }
        return count + ((try? Self.makePrivate(entriesOf: folder, depth: depth)) ?? 0)
    }

    /// Tightens the files in `folder`, and the folders in it with what they hold down to `depth` more levels (none
    /// at 0: files only); how many changed. Links, FIFOs and devices are left alone, never opened.
    static func makePrivate(entriesOf folder: OpenFolder, depth: Int) throws(StoreError) -> Int {
        var count = 0
        for entry in try FolderStore.entries(of: folder) {
            switch entry.kind {
            case .object:
                let options: FileDescriptor.OpenOptions = [.noFollow, .nonBlocking]
                guard
                    let file = try? FileDescriptor.open(path: folder.entryPath(entry.name), .readOnly, options: options)
                else { continue }
                defer { file.closeAfterUse() }
                if tighten(file, as: .regular) { count += 1 }
            case .prefix where depth > 0:
                guard let inner = try? folder.folder(named: entry.name, creating: false) else { continue }
                if tighten(inner.descriptor, as: .directory) { count += 1 }
                count += (try? makePrivate(entriesOf: inner, depth: depth - 1)) ?? 0
            default:
                continue
            }
        }
        return count
    }

    /// The entries of the open `folder`.
    static func entries(of folder: OpenFolder) throws(StoreError) -> [ObjectEntry] {
        var entries: [ObjectEntry] = []
        do throws(Errno) {
            for name in try FolderListing.names(in: folder.descriptor) {
                guard let status = try folder.descriptor.status(ofEntry: name) else { continue }
                entries.append(ObjectEntry(name: name.description, kind: ObjectEntry.Kind(status.type)))
            }
        } catch {
            throw StoreError(failed: "list", folder.location, error)
        }
        return entries
    }

    /// Sets the store's mode on the open file if it is a `type` with a wider mode (and the caller's); whether it did.
    static func tighten(_ file: FileDescriptor, as type: FileType) -> Bool {
        let wanted = type == .directory ? folderPermissions : filePermissions
        guard let status = try? file.stat(), status.type == type,
            status.permissions.rawValue & 0o7777 != wanted.rawValue
        else { return false }
        return (try? file.setPermissions(wanted)) != nil
    }

    /// Makes the folder `path` and every missing folder above it, each 0700 whatever the umask.
    public static func makeFolders(_ path: String) throws(StoreError) {
        func trimmed(_ path: Substring) -> String {
            var path = path
            while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
            return String(path)
        }
        var missing: [String] = []
        var current = trimmed(path[...])
        while !current.isEmpty, current != "/", !FilePaths.exists(current) {
            missing.append(current)
            guard let slash = current.lastIndex(of: "/") else { break }
            current = trimmed(current[..<slash])
        }
        for folder in missing.reversed() {
            do throws(Errno) {
                try FilePaths.makeFolder(folder, permissions: folderPermissions)
            } catch  where error == .fileExists {
                // Made in between by another process making the same store.
            } catch {
                throw StoreError(failed: "create", folder, error)
            }
        }
    }
}
