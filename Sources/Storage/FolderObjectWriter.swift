import FileIO
import SystemPackage

/// A new object of a ``FolderStore`` being written: a file under a temporary name in the object's folder, given the
/// object's name by `link` once flushed (never replacing a file by that name), then the folder flushed.
final class FolderObjectWriter: ObjectWriter {
    private let folder: OpenFolder
    private let temporary: String
    private let name: String
    private var descriptor: FileDescriptor?
    private(set) var count: UInt64 = 0

    init(folder: OpenFolder, temporary: String, name: String, descriptor: FileDescriptor) {
        self.folder = folder
        self.temporary = temporary
        self.name = name
        self.descriptor = descriptor
    }

    deinit {
        discard()
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws(StoreError) {
        guard let descriptor else { preconditionFailure("append after finish or discard") }
        do throws(Errno) { try descriptor.write(bytes, at: count) } catch {
            throw StoreError(failed: "write", folder.location(of: name), error)
        }
        count += UInt64(bytes.count)
    }

    func finish() throws(StoreError) {
        guard let descriptor else { preconditionFailure("finish after finish or discard") }
        do throws(Errno) { try descriptor.sync() } catch {
            throw StoreError(failed: "flush", folder.location(of: name), error)
        }
        do throws(Errno) {
            try FilePaths.link(folder.entryPath(temporary), as: folder.entryPath(name))
        } catch .fileExists {
            discard()
            throw StoreError(.alreadyExists, "\(folder.location(of: name)) exists already")
        } catch {
            discard()
            throw StoreError(failed: "create", folder.location(of: name), error)
        }
        discard()
        try folder.sync()
    }

    func discard() {
        guard let descriptor else { return }
        descriptor.closeAfterUse()
        self.descriptor = nil
        try? folder.descriptor.removeEntry(named: EntryName(temporary), isFolder: false)
    }
}
