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
        try folder.link(temporary, as: name, thenRelease: discard)
    }

    func discard() {
        guard let descriptor else { return }
        descriptor.closeAfterUse()
        self.descriptor = nil
        try? folder.descriptor.removeEntry(named: EntryName(temporary), isFolder: false)
    }
}

extension OpenFolder {
    /// Gives the flushed temporary file `temporary` the name `name` as well, never replacing a file by that name
    /// (``StoreError/Code/alreadyExists``); then runs `release`, which removes the temporary name, whether that
    /// worked or not, and flushes the folder once it did.
    func link(_ temporary: String, as name: String, thenRelease release: () -> Void) throws(StoreError) {
        do throws(Errno) {
            try FilePaths.link(entryPath(temporary), as: entryPath(name))
        } catch .fileExists {
            release()
            throw StoreError(.alreadyExists, "\(location(of: name)) exists already")
        } catch {
            release()
            throw StoreError(failed: "create", location(of: name), error)
        }
        release()
        try sync()
    }
}
