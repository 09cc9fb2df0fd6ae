import FileIO
import Synchronization
import SystemPackage

/// What the chain reader reads an image through: its size, reads of any range, where its data and holes are, and
/// what identifies it (so that a chain reaching the same image twice is caught). ``ReadOnlyFile`` is the file; an
/// object of a store can be another, without the reader knowing. Reads are the hot path: one call per cluster run,
/// into the caller's buffer, without copies or allocations in between.
package protocol RandomAccessImage: AnyObject, Sendable {
    /// The name the image was opened by, for error messages.
    var path: String { get }
    /// The size when opened.
    var size: UInt64 { get }
    /// What identifies the image's bytes: a file's device and inode.
    var device: UInt64 { get }
    var inode: UInt64 { get }

    /// Fills `buffer` from `offset`; what lies past the end reads as zeros.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(QCOW2Error)
    /// Where data starts again at or after `offset`, or nil when only a hole (or the end) follows.
    func nextData(from offset: UInt64) -> UInt64?
    /// Where the data from `offset` ends: the next hole, or the end.
    func nextHole(from offset: UInt64) -> UInt64
    /// Reads from now on are of each range once (a copy): the file drops them from its cache.
    func readsOnce()
    /// Bytes the image occupies where it is stored.
    func allocatedBytes() throws(QCOW2Error) -> UInt64
}

extension RandomAccessImage {
    /// Reads `count` bytes at `offset` into a new array, zeros past the end of the image.
    func read(count: Int, at offset: UInt64) throws(QCOW2Error) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(QCOW2Error) in try read(into: buffer, at: offset) }
        }
        try result.get()
        return bytes
    }
}

/// An image file opened read-only, and the only place in the reader that makes system calls on it.
///
/// A class so that every layer, cache and concurrent reader shares one descriptor, closed when the last
/// of them lets go. Its stored properties never change after `init` but for an atomic flag, so it is `Sendable`
/// as is; `pread` carries its own offset, so concurrent reads need no lock.
final class ReadOnlyFile: RandomAccessImage {
    /// The path the file was opened by, for error messages.
    let path: String
    let descriptor: FileDescriptor
    /// The size when opened. Images are not expected to change under a reader; reads past a size that
    /// shrank since still return zeros rather than garbage.
    let size: UInt64
    /// Identity of the file, so that a backing chain that reaches the same file by another name is caught.
    let device: UInt64
    let inode: UInt64
    /// Whether each range read is dropped from the page cache after (``QCOW2Chain/dropPagesAfterReading()``).
    private let dropsPages = Atomic<Bool>(false)
    /// A descriptor of the same file for direct reads, or -1: aligned reads (data clusters into page-aligned buffers)
    /// go through it, past the page cache.
    private let directDescriptor = Atomic<Int32>(-1)

    /// Opens `path` with O_RDONLY | O_CLOEXEC: the reader must never be able to change an image, and a
    /// child process (qemu-img, nbdkit) must not inherit it.
    ///
    /// The file's type is checked on the open descriptor before anything is read: a FIFO, a socket or a folder is
    /// refused (opened with O_NONBLOCK, a FIFO cannot block the open), a block or character device unless
    /// `allowingDevices`. Without `followingSymlinks`, a path whose last component is a symbolic link is refused
    /// (O_NOFOLLOW). A refusal is `.io`, naming the path and the kind of file.
    init(path: String, followingSymlinks: Bool = true, allowingDevices: Bool = false) throws(QCOW2Error) {
        let descriptor: FileDescriptor
        let status: Stat
        do throws(ImageFileRefusal) {
            (descriptor, status) = try FileDescriptor.openChecked(
                path: path, followingSymlinks: followingSymlinks, allowingDevices: allowingDevices)
        } catch {
            throw QCOW2Error(.io, error.message(for: path), cause: error.errno)
        }
        let end: Int64
        do throws(Errno) {
            // The end rather than the stat size: a block device reports a size of 0 in stat.
            end = try descriptor.seekToEnd()
        } catch {
            descriptor.closeAfterUse()
            throw QCOW2Error(failed: "find the size of", path, error)
        }
        self.path = path
        self.descriptor = descriptor
        self.size = UInt64(end)
        self.device = UInt64(truncatingIfNeeded: status.deviceID.rawValue)
        self.inode = UInt64(truncatingIfNeeded: status.inode.rawValue)
    }

    deinit {
        descriptor.closeAfterUse()
        let direct = directDescriptor.load(ordering: .relaxed)
        if direct >= 0 { FileDescriptor(rawValue: direct).closeAfterUse() }
    }

    /// Fills `buffer` from `offset`. What lies past the end of the file reads as zeros, as qemu does for
    /// the tail of a short image, so callers only decide whether reading there is legitimate.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            guard position < UInt64(Int64.max) else { break }
            let count: Int
            let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
            do throws(Errno) {
                if let direct = try readingDirectly(into: rest, at: position) {
                    count = direct
                } else {
                    count = try descriptor.read(into: rest, at: position)
                }
            } catch {
                throw QCOW2Error(failed: "read", path, error, at: position)
            }
            if count == 0 { break }
            done += count
        }
        if done < buffer.count {
            (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
        }
        if done > 0, dropsPages.load(ordering: .relaxed) { descriptor.advise(.dontNeed, at: offset, length: done) }
    }

    /// Reads `buffer` directly when the direct descriptor exists and the offset, length and address are aligned;
    /// nil when it does not apply, or when the file system refuses (the caller then reads through the cache).
    private func readingDirectly(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(Errno) -> Int? {
        let direct = directDescriptor.load(ordering: .relaxed)
        let alignment = 4096
        guard direct >= 0, let base = buffer.baseAddress, offset % UInt64(alignment) == 0,
            buffer.count % alignment == 0, Int(bitPattern: base) % alignment == 0
        else { return nil }
        do throws(Errno) {
            return try FileDescriptor(rawValue: direct).read(into: buffer, at: offset)
        } catch .invalidArgument {
            return nil
        }
    }

    /// Reads from now on drop what they read from the page cache, and aligned ones bypass it (where the file system
    /// allows direct I/O): for a reader that reads each cluster once.
    func readsOnce() {
        dropsPages.store(true, ordering: .relaxed)
        guard directDescriptor.load(ordering: .relaxed) < 0,
            let direct = try? descriptor.reopenedForDirectReads()
        else { return }
        if !directDescriptor.compareExchange(expected: -1, desired: direct.rawValue, ordering: .relaxed).exchanged {
            direct.closeAfterUse()
        }
    }

    /// Where data starts again at or after `offset`: `offset` itself inside data, the start of the next data past a
    /// hole, or nil when only a hole (or the end) follows. A file system or device that cannot tell holes reports
    /// everything as data, and so does this.
    ///
    /// The corresponding C function is `lseek` with `SEEK_DATA`; the descriptor's position is not relied on (reads
    /// use `pread`), so concurrent calls need no lock.
    func nextData(from offset: UInt64) -> UInt64? {
        guard let start = Int64(exactly: offset) else { return nil }
        do throws(Errno) {
            return try descriptor.nextData(from: start).map { UInt64(clamping: $0) }
        } catch {
            return offset
        }
    }

    /// Where the data from `offset` ends: the next hole, or the end of the file (`lseek` with `SEEK_HOLE`).
    func nextHole(from offset: UInt64) -> UInt64 {
        guard let start = Int64(exactly: offset) else { return size }
        do throws(Errno) {
            return UInt64(clamping: try descriptor.nextHole(from: start))
        } catch {
            return size
        }
    }

    /// Bytes the file occupies on its file system (st_blocks are 512-byte units by POSIX), read now
    /// rather than at open so that statistics reflect the file as it is.
    func allocatedBytes() throws(QCOW2Error) -> UInt64 {
        do throws(Errno) {
            return UInt64(truncatingIfNeeded: try descriptor.stat().blocksAllocated) * 512
        } catch {
            throw QCOW2Error(failed: "stat", path, error)
        }
    }
}
