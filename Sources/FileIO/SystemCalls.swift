internal import CLinuxIO
import SystemPackage

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Raw calls
// The file calls swift-system's FileDescriptor lacks, and the only place in the package that makes them. Each goes
// through `retryingOnInterrupt`, so a signal never turns into a failed write or flush.

/// Runs `call` again for as long as it fails with EINTR, and throws any other failure as its `Errno`.
///
/// A call on a closed descriptor (EBADF) traps: it is a bug in the caller, not a condition to handle.
@inline(__always)
func retryingOnInterrupt<Result: FixedWidthInteger>(_ call: () -> Result) throws(Errno) -> Result {
    while true {
        let result = call()
        guard result == -1 else { return result }
        let code = Errno(rawValue: errno)
        if code == .interrupted { continue }
        precondition(code != .badFileDescriptor, "a file call on a closed descriptor")
        throw code
    }
}

extension FileDescriptor {
    /// Flushes the file's data and metadata to the disk.
    ///
    /// The corresponding C function is `fsync`.
    package func sync() throws(Errno) {
        _ = try retryingOnInterrupt { fsync(rawValue) }
    }

    /// Makes `length` bytes at `offset` read as zeros and frees their blocks, keeping the file's size.
    ///
    /// The corresponding C function is `fallocate` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`.
    package func punchHole(at offset: UInt64, length: UInt64) throws(Errno) {
        _ = try retryingOnInterrupt { pullback_punch_hole(rawValue, Int64(offset), Int64(length)) }
    }

    /// Starts writing the range's dirty pages to the disk now, without waiting, so that the disk works while a
    /// copy goes on instead of all at its final fsync. A failure here surfaces at that fsync, so it is ignored.
    ///
    /// The corresponding C function is `sync_file_range` with `SYNC_FILE_RANGE_WRITE`.
    package func startWriteback(at offset: UInt64, length: Int) {
        _ = try? retryingOnInterrupt { pullback_start_writeback(rawValue, Int64(offset), Int64(length)) }
    }

    /// Writes the range's dirty pages to the disk and waits until they are there (also for writeback started
    /// earlier). Like ``startWriteback(at:length:)`` it does not make the data durable (the file's metadata may
    /// still be unwritten) and a failure surfaces at the final fsync, so it is ignored here.
    ///
    /// The corresponding C function is `sync_file_range` with `SYNC_FILE_RANGE_WAIT_BEFORE`,
    /// `SYNC_FILE_RANGE_WRITE` and `SYNC_FILE_RANGE_WAIT_AFTER`.
    package func finishWriteback(at offset: UInt64, length: Int) {
        _ = try? retryingOnInterrupt { pullback_finish_writeback(rawValue, Int64(offset), Int64(length)) }
    }

    /// A second descriptor, read-only, of the file this one has open, whose reads bypass the page cache (O_DIRECT):
    /// they need the offset, the length and the buffer's address aligned to the file system's block size (4096
    /// bytes is safe) and fail with EINVAL otherwise. Throws when the file system has no direct I/O (tmpfs) or the
    /// reopened file is not the same one.
    ///
    /// The corresponding C call is `open` of `/proc/self/fd/<fd>` with `O_RDONLY | O_DIRECT | O_CLOEXEC`.
    package func reopenedForDirectReads() throws(Errno) -> FileDescriptor {
        let direct = FileDescriptor(rawValue: try retryingOnInterrupt { pullback_reopen_direct(rawValue) })
        do throws(Errno) {
            let (original, reopened) = (try stat(), try direct.stat())
            guard original.deviceID == reopened.deviceID, original.inode == reopened.inode else {
                throw .noSuchFileOrDirectory
            }
            return direct
        } catch {
            direct.closeAfterUse()
            throw error
        }
    }

    /// The next offset at or after `offset` that holds data, or nil when only a hole (or the end) follows. The
    /// descriptor's position moves; callers that read with `pread` do not care.
    ///
    /// The corresponding C function is `lseek` with `SEEK_DATA`.
    package func nextData(from offset: Int64) throws(Errno) -> Int64? {
        do throws(Errno) {
            return try retryingOnInterrupt { pullback_next_data(rawValue, offset) }
        } catch  where error == .noSuchAddressOrDevice {
            return nil
        }
    }

    /// The next offset at or after `offset` where a hole starts (the end of the file counts as one).
    ///
    /// The corresponding C function is `lseek` with `SEEK_HOLE`.
    package func nextHole(from offset: Int64) throws(Errno) -> Int64 {
        try retryingOnInterrupt { pullback_next_hole(rawValue, offset) }
    }

    /// How the file will be read, for the kernel's page cache.
    package enum Advice {
        /// Read once from start to end: read ahead more.
        case sequential
        /// The pages read so far are of no further use: drop them.
        case dontNeed
    }

    /// Tells the kernel how the file, or `length` bytes of it at `offset`, will be read. Only a hint, so a failure
    /// is ignored. A length of 0 means up to the end of the file.
    ///
    /// The corresponding C function is `posix_fadvise` (which returns its error rather than setting errno, and
    /// is not interrupted by signals).
    package func advise(_ advice: Advice, at offset: UInt64 = 0, length: Int = 0) {
        _ = posix_fadvise(
            rawValue, off_t(truncatingIfNeeded: offset), off_t(length),
            advice == .sequential ? POSIX_FADV_SEQUENTIAL : POSIX_FADV_DONTNEED)
    }

    /// Takes an exclusive advisory lock on the file without waiting; false when another descriptor holds it.
    /// The lock ends when the last descriptor sharing it is closed, so also when the process dies.
    ///
    /// The corresponding C function is `flock` with `LOCK_EX | LOCK_NB`.
    package func tryLock() throws(Errno) -> Bool {
        do {
            _ = try retryingOnInterrupt { flock(rawValue, LOCK_EX | LOCK_NB) }
            return true
        } catch .wouldBlock {
            return false
        }
    }

    /// Sets the file's permission bits exactly, whatever the umask was when it was made.
    ///
    /// The corresponding C function is `fchmod`.
    package func setPermissions(_ permissions: FilePermissions) throws(Errno) {
        _ = try retryingOnInterrupt { fchmod(rawValue, permissions.rawValue) }
    }
}

// MARK: - Path calls

/// Calls on paths that swift-system lacks, retried on EINTR like the rest.
package enum FilePaths {
    /// Renames `source` to `destination`, replacing a file there atomically.
    ///
    /// The corresponding C function is `rename`.
    package static func rename(_ source: String, to destination: String) throws(Errno) {
        _ = try retryingOnInterrupt { Glibc.rename(source, destination) }
    }

    /// Swaps the names `first` and `second` (two files, or two folders) in one atomic step: at every instant each
    /// name exists, holding either its old or its new content. Fails with `.invalidArgument` on a file system that
    /// cannot do it.
    ///
    /// The corresponding C function is `renameat2` with `RENAME_EXCHANGE`.
    package static func exchange(_ first: String, with second: String) throws(Errno) {
        _ = try retryingOnInterrupt { pullback_exchange_names(first, second) }
    }

    /// Gives the file at `existing` a second name, failing with `.fileExists` when `name` exists.
    ///
    /// The corresponding C function is `link`.
    package static func link(_ existing: String, as name: String) throws(Errno) {
        _ = try retryingOnInterrupt { Glibc.link(existing, name) }
    }

    /// Sets the permission bits of `path` exactly (a unix socket, which has no descriptor to fchmod).
    ///
    /// The corresponding C function is `chmod`.
    package static func setPermissions(_ path: String, _ permissions: FilePermissions) throws(Errno) {
        _ = try retryingOnInterrupt { chmod(path, permissions.rawValue) }
    }

    /// Removes the name `path` (not a folder).
    ///
    /// The corresponding C function is `unlink`.
    package static func remove(_ path: String) throws(Errno) {
        _ = try retryingOnInterrupt { unlink(path) }
    }

    /// Removes the empty folder `path`.
    ///
    /// The corresponding C function is `rmdir`.
    package static func removeFolder(_ path: String) throws(Errno) {
        _ = try retryingOnInterrupt { rmdir(path) }
    }

    /// Opens the folder `path` read-only, or returns nil when nothing has that name. Fails with
    /// `.tooManySymbolicLinkLevels` when the name is a symbolic link (the folders on the way to it may be links).
    ///
    /// The corresponding C function is `open` with `O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC`.
    package static func openFolder(_ path: String) throws(Errno) -> FileDescriptor? {
        do {
            return try FileDescriptor.open(path: path, .readOnly, options: [.directory, .noFollow])
        } catch .noSuchFileOrDirectory {
            return nil
        }
    }

    /// Whether anything (even a dangling symbolic link) has the name `path`.
    ///
    /// The corresponding C function is `lstat`.
    package static func exists(_ path: String) -> Bool {
        (try? Stat(path, followTargetSymlink: false)) != nil
    }

    /// Makes the folder `path` with exactly `permissions` (the umask only ever removes bits, so they are set again
    /// on the new folder), failing with `.fileExists` when anything, a symbolic link too, has the name.
    ///
    /// The corresponding C functions are `mkdir`, then `open` with `O_DIRECTORY | O_NOFOLLOW` and `fchmod`.
    package static func makeFolder(_ path: String, permissions: FilePermissions) throws(Errno) {
        _ = try retryingOnInterrupt { mkdir(path, permissions.rawValue) }
        let folder = try FileDescriptor.open(path: path, .readOnly, options: [.directory, .noFollow])
        defer { folder.closeAfterUse() }
        try folder.setPermissions(permissions)
    }

    /// What the name `path` itself is (a symbolic link is not followed), or nil when nothing has that name.
    ///
    /// The corresponding C function is `lstat`.
    package static func status(ofName path: String) throws(Errno) -> Stat? {
        do {
            return try Stat(path, followTargetSymlink: false)
        } catch .noSuchFileOrDirectory {
            return nil
        }
    }

    /// Makes a new folder, 0700, named after `template` with its trailing `XXXXXX` replaced by six random letters
    /// and digits, and returns its path.
    ///
    /// The corresponding C function is `mkdtemp`.
    package static func makeTemporaryFolder(_ template: String) throws(Errno) -> String {
        var bytes = Array(template.utf8CString)
        let made = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { throw Errno(rawValue: errno) }
        return String(cString: made)
    }

    /// The user id this process runs as, which owns every file it makes.
    ///
    /// The corresponding C function is `getuid`.
    package static var userID: UInt32 { getuid() }

    /// Flushes the folder `path`, so that the renames, new names and removals in it are durable.
    ///
    /// The corresponding C functions are `open` with `O_DIRECTORY`, then `fsync`.
    package static func syncFolder(_ path: String) throws(Errno) {
        let folder = try FileDescriptor.open(path: path, .readOnly, options: .directory)
        defer { folder.closeAfterUse() }
        try folder.sync()
    }
}

// MARK: - Calls relative to an open folder
// A name is looked up in the folder the descriptor has open, never by a path built again from parts: a racing
// writer that swaps a folder on the way for a symbolic link cannot steer these calls out of the folder.

extension FileDescriptor {
    /// Opens the folder named `name` in this folder, read-only. Fails with `.tooManySymbolicLinkLevels` when the
    /// name is a symbolic link, which is not followed, and `.notDirectory` when it is anything else but a folder.
    ///
    /// The corresponding C function is `openat` with `O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC`.
    package func openFolder(named name: EntryName) throws(Errno) -> FileDescriptor {
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        return FileDescriptor(rawValue: try retryingOnInterrupt { openat(rawValue, name.terminated, flags) })
    }

    /// Removes the name `name` from this folder: a file's or a symbolic link's (never what it points to), or with
    /// `isFolder` an empty folder's. Without `isFolder`, a folder by that name fails with `.isDirectory`; with it,
    /// anything else fails with `.notDirectory`.
    ///
    /// The corresponding C function is `unlinkat` (with `AT_REMOVEDIR` for a folder).
    package func removeEntry(named name: EntryName, isFolder: Bool) throws(Errno) {
        _ = try retryingOnInterrupt { unlinkat(rawValue, name.terminated, isFolder ? AT_REMOVEDIR : 0) }
    }

    /// What the name `name` in this folder is itself (a symbolic link is not followed), or nil when nothing has
    /// that name.
    ///
    /// The corresponding C function is `fstatat` with `AT_SYMLINK_NOFOLLOW`.
    package func status(ofEntry name: EntryName) throws(Errno) -> Stat? {
        var status = Glibc.stat()
        do {
            _ = try retryingOnInterrupt { fstatat(rawValue, name.terminated, &status, AT_SYMLINK_NOFOLLOW) }
        } catch .noSuchFileOrDirectory {
            return nil
        }
        return Stat(rawValue: status)
    }
}
