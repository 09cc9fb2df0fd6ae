#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An image file opened read-only, and the only place in the reader that makes system calls on it.
///
/// A class so that every layer, cache and concurrent reader shares one descriptor, closed when the last
/// of them lets go. Its stored properties never change after `init`, so it is `Sendable` as is; `pread`
/// carries its own offset, so concurrent reads need no lock.
final class ReadOnlyFile: Sendable {
    /// The path the file was opened by, for error messages.
    let path: String
    let descriptor: Int32
    /// The size when opened. Images are not expected to change under a reader; reads past a size that
    /// shrank since still return zeros rather than garbage.
    let size: UInt64
    /// Identity of the file, so that a backing chain that reaches the same file by another name is caught.
    let device: UInt64
    let inode: UInt64

    /// Opens `path` with O_RDONLY | O_CLOEXEC: the reader must never be able to change an image, and a
    /// child process (qemu-img, nbdkit) must not inherit it.
    init(path: String) throws(QCOW2Error) {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw Self.failure("open", path, errno: errno) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            let code = errno
            close(fd)
            throw Self.failure("stat", path, errno: code)
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            close(fd)
            throw QCOW2Error(.io, "cannot read \(path): not a regular file or block device")
        }
        // lseek rather than st_size: a block device reports a size of 0 in stat.
        let end = lseek(fd, 0, SEEK_END)
        guard end >= 0 else {
            let code = errno
            close(fd)
            throw Self.failure("find the size of", path, errno: code)
        }
        self.path = path
        self.descriptor = fd
        self.size = UInt64(end)
        self.device = UInt64(truncatingIfNeeded: status.st_dev)
        self.inode = UInt64(truncatingIfNeeded: status.st_ino)
    }

    deinit {
        close(descriptor)
    }

    /// Fills `buffer` from `offset`. What lies past the end of the file reads as zeros, as qemu does for
    /// the tail of a short image, so callers only decide whether reading there is legitimate.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        var done = 0
        while done < buffer.count {
            let position = offset + UInt64(done)
            guard position < UInt64(Int64.max) else { break }
            let count = pread(descriptor, base + done, buffer.count - done, off_t(position))
            if count < 0 {
                if errno == EINTR { continue }
                throw Self.failure("read", path, errno: errno, at: position)
            }
            if count == 0 { break }
            done += count
        }
        if done < buffer.count {
            (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
        }
    }

    /// Reads `count` bytes at `offset` into a new array, zeros past the end of the file.
    func read(count: Int, at offset: UInt64) throws(QCOW2Error) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { buffer in
            Result { () throws(QCOW2Error) in try read(into: buffer, at: offset) }
        }
        try result.get()
        return bytes
    }

    /// Bytes the file occupies on its file system (st_blocks are 512-byte units by POSIX), read now
    /// rather than at open so that statistics reflect the file as it is.
    func allocatedBytes() throws(QCOW2Error) -> UInt64 {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw Self.failure("stat", path, errno: errno) }
        return UInt64(truncatingIfNeeded: status.st_blocks) * 512
    }

    /// The typed error for a failed system call: what was attempted, on which file, and errno as the cause
    /// so that callers can tell a missing file from an I/O error.
    static func failure(_ what: String, _ path: String, errno code: Int32, at offset: UInt64? = nil) -> QCOW2Error {
        let place = offset.map { " at offset \($0)" } ?? ""
        return QCOW2Error(
            .io, "cannot \(what) \(path)\(place): \(String(cString: strerror(code)))", cause: SystemError(errno: code))
    }
}
