import FileIO
import Synchronization
import SystemPackage

/// An object of a ``FolderStore`` open for reading: a read-only descriptor of its file, closed when the reader ends.
final class FolderObjectReader: ObjectReader {
    let descriptor: FileDescriptor
    let size: UInt64
    let location: String
    /// Whether the object is read once, in order: its pages are dropped from the cache when the reader ends.
    private let readOnce = Atomic<Bool>(false)

    init(descriptor: FileDescriptor, size: UInt64, location: String) {
        self.descriptor = descriptor
        self.size = size
        self.location = location
    }

    deinit {
        if readOnce.load(ordering: .relaxed) { descriptor.advise(.dontNeed) }
        descriptor.closeAfterUse()
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(StoreError) -> Int {
        do throws(Errno) { return try descriptor.read(into: buffer, at: offset) } catch {
            throw StoreError(failed: "read", location, error)
        }
    }

    func readsOnceInOrder() {
        readOnce.store(true, ordering: .relaxed)
        descriptor.advise(.sequential)
    }
}
