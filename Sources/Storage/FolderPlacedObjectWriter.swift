import FileIO
import Synchronization
import SystemPackage

/// A new object of a ``FolderStore`` written at offsets: a file under a temporary name in the object's folder,
/// written with `pwrite` from any thread, cut or extended to its size, flushed and given the object's name by `link`
/// (never replacing a file by that name), then the folder flushed, as ``FolderObjectWriter`` does.
///
/// What it writes goes to the disk as it is written, through a ``FileIO/WritebackWindow``, as a copy's image file
/// does: otherwise a large object piles up as dirty pages, and the writers are throttled in bursts. Only the pages a
/// write fills whole are handed to the window, which drops them from the cache once on the disk: a page that another
/// write fills the rest of (a sealed frame is not a whole number of pages) must stay, or that write would read it
/// back from the disk first.
final class FolderPlacedObjectWriter: PlacedObjectWriter {
    /// The page size the window works in.
    private static let pageSize: UInt64 = 4096

    private struct State {
        var descriptor: FileDescriptor?
        /// The end of the furthest byte written.
        var end: UInt64 = 0
    }

    private let folder: OpenFolder
    private let temporary: String
    private let name: String
    private let state: Mutex<State>
    private let window = WritebackWindow()

    init(folder: OpenFolder, temporary: String, name: String, descriptor: FileDescriptor) {
        self.folder = folder
        self.temporary = temporary
        self.name = name
        self.state = Mutex(State(descriptor: descriptor))
    }

    deinit {
        discard()
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        let descriptor = state.withLock { state in
            state.end = max(state.end, offset + UInt64(bytes.count))
            return state.descriptor
        }
        guard let descriptor else { preconditionFailure("write after finish or discard") }
        // Outside the lock: writes at different offsets run in parallel.
        do throws(Errno) { try descriptor.write(bytes, at: offset) } catch {
            throw StoreError(failed: "write", folder.location(of: name), error)
        }
        let pageMask = Self.pageSize - 1
        let firstWholePage = (offset + pageMask) & ~pageMask
        let endOfWholePages = (offset + UInt64(bytes.count)) & ~pageMask
        if endOfWholePages > firstWholePage {
            window.wrote(at: firstWholePage, length: Int(endOfWholePages - firstWholePage), on: descriptor)
        }
    }

    func finish(size: UInt64) throws(StoreError) {
        let (descriptor, end) = state.withLock { ($0.descriptor, $0.end) }
        guard let descriptor else { preconditionFailure("finish after finish or discard") }
        let location = folder.location(of: name)
        guard end <= size else {
            discard()
            throw StoreError(.io, "\(location) was written up to byte \(end), past its size \(size)")
        }
        do throws(Errno) {
            try descriptor.truncate(to: size)
            try descriptor.sync()
        } catch {
            discard()
            throw StoreError(failed: "flush", location, error)
        }
        try folder.link(temporary, as: name, thenRelease: discard)
    }

    func discard() {
        let taken = state.withLock { state in
            defer { state.descriptor = nil }
            return state.descriptor
        }
        guard let descriptor = taken else { return }
        descriptor.closeAfterUse()
        try? folder.descriptor.removeEntry(named: EntryName(temporary), isFolder: false)
    }
}
