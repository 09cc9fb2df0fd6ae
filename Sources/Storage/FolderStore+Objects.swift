import FileIO
import SystemPackage

extension FolderStore {
    public func kind(of key: ObjectKey) throws(StoreError) -> ObjectEntry.Kind? {
        guard let parent = try parent(of: key) else { return nil }
        return try parent.kind(of: key.name)
    }

    public func open(_ key: ObjectKey) throws(StoreError) -> (any ObjectReader)? {
        guard let parent = try parent(of: key) else { return nil }
        defer { withExtendedLifetime(parent) {} }  // keeps its descriptor, named by path below
        let location = parent.location(of: key.name)
        do throws(ImageFileRefusal) {
            let (descriptor, status) = try FileDescriptor.openChecked(
                path: parent.entryPath(key.name), followingSymlinks: false, allowingDevices: false)
            return FolderObjectReader(descriptor: descriptor, size: UInt64(status.size), location: location)
        } catch {
            switch error {
            case .symbolicLink: throw StoreError.symbolicLink(location)
            case .refused(let type):
                throw StoreError(.notAnObject, "\(location) is \(type.spokenName), not a file of the store")
            case .failed(_, .noSuchFileOrDirectory): return nil
            case .failed(let call, let errno): throw StoreError(failed: call, location, errno)
            }
        }
    }

    public func create(_ key: ObjectKey) throws(StoreError) -> any ObjectWriter {
        let (parent, temporary, descriptor) = try createTemporary(for: key)
        return FolderObjectWriter(folder: parent, temporary: temporary, name: key.name, descriptor: descriptor)
    }

    public func createPlaced(_ key: ObjectKey, expectedSize: UInt64) throws(StoreError) -> any PlacedObjectWriter {
        let (parent, temporary, descriptor) = try createTemporary(for: key)
        return FolderPlacedObjectWriter(folder: parent, temporary: temporary, name: key.name, descriptor: descriptor)
    }

    /// The new temporary file of `key`'s object in its folder (made when missing), open for writing.
    private func createTemporary(
        for key: ObjectKey
    ) throws(StoreError) -> (folder: OpenFolder, temporary: String, descriptor: FileDescriptor) {
        guard let parent = try parent(of: key, creating: true) else {
            throw StoreError(.io, "cannot create the folder of \(location(of: key))")
        }
        defer { withExtendedLifetime(parent) {} }  // keeps its descriptor, named by path below
        let temporary = Self.temporaryName(for: key.name)
        do throws(Errno) {
            let descriptor = try FileDescriptor.createNew(
                path: parent.entryPath(temporary), .writeOnly, permissions: Self.filePermissions)
            return (parent, temporary, descriptor)
        } catch {
            throw StoreError(failed: "create", parent.location(of: temporary), error)
        }
    }

    public func delete(_ key: ObjectKey) throws(StoreError) {
        guard let parent = try parent(of: key) else { return }
        do throws(Errno) {
            try parent.descriptor.removeEntry(named: EntryName(key.name), isFolder: false)
        } catch .noSuchFileOrDirectory {
        } catch .isDirectory {
            throw StoreError(.notAnObject, "\(parent.location(of: key.name)) is a folder, not an object")
        } catch {
            throw StoreError(failed: "remove", parent.location(of: key.name), error)
        }
    }

    public func deleteTree(_ prefix: ObjectKey) throws(StoreError) {
        guard let parent = try parent(of: prefix) else { return }
        do throws(FileTreeError) { try FileTree.remove(named: prefix.name, in: parent.descriptor) } catch {
            let named = error.under(parent.location)
            throw StoreError(.io, named.description, cause: error.errno.map { $0 as any Error & Sendable } ?? named)
        }
    }

    public func storedBytes(of key: ObjectKey) -> UInt64 {
        guard let parent = try? parent(of: key),
            let status = try? parent.descriptor.status(ofEntry: EntryName(key.name)),
            status.type == .regular, status.blocksAllocated >= 0
        else { return 0 }
        let (bytes, overflow) = UInt64(status.blocksAllocated).multipliedReportingOverflow(by: 512)
        return overflow ? .max : bytes
    }

    public func list(under prefix: ObjectKey?) throws(StoreError) -> [ObjectEntry] {
        guard let folder = try folder(prefix) else { return [] }
        var entries: [ObjectEntry] = []
        do throws(Errno) {
            let listing = try FolderListing(of: folder.descriptor)
            while let entry = try listing.next() {
                let name = entry.name.description
                switch entry.kind {
                case .folder: entries.append(ObjectEntry(name: name, kind: .prefix))
                case .symbolicLink: entries.append(ObjectEntry(name: name, kind: .symbolicLink))
                case .other, .unknown:
                    // A regular file or something else: only the entry's status tells.
                    guard let status = try folder.descriptor.status(ofEntry: entry.name) else { continue }
                    entries.append(ObjectEntry(name: name, kind: ObjectEntry.Kind(status.type)))
                }
            }
        } catch {
            throw StoreError(failed: "list", folder.location, error)
        }
        return entries.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    /// A name for `name`'s object while it is written: hidden, unique, and within a file system's name limit.
    static func temporaryName(for name: String) -> String {
        let random = (0..<4).map { _ in String(UInt32.random(in: .min ... .max), radix: 16) }.joined()
        return "." + String(decoding: name.utf8.prefix(200), as: UTF8.self) + "." + random + ".tmp"
    }
}
