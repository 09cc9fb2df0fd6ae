internal import CLinuxIO
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Raw file calls
// The target's system calls, each retried on EINTR and turned into a CopyError that names the file.
// They block, so they run on NIO's thread pool, never on Swift's cooperative threads.
// (swift-system's FileDescriptor covers open/pwrite/close; fsync and fallocate it does not, so these stay
// together here.)

/// A file descriptor handed to the thread pool's threads; the owner closes it only after all I/O ended.
struct TargetFile: Sendable {
    let descriptor: Int32
    let path: String
}

/// A pointer that crosses to a thread-pool thread while its owner awaits the call.
struct Borrowed<Pointer>: @unchecked Sendable {  // the caller keeps the memory alive until the call returns
    let pointer: Pointer
}

enum FileCalls {
    /// Runs a blocking file operation on the shared I/O thread pool.
    static func offload<T: Sendable>(_ body: @escaping @Sendable () throws(CopyError) -> T) async throws(CopyError) -> T
    {
        do {
            return try await NIOThreadPool.singleton.runIfActive { () throws -> T in try body() }
        } catch let error as CopyError {
            throw error
        } catch is CancellationError {
            throw CopyError(.interrupted, "interrupted")
        } catch {
            throw CopyError(.target, "the I/O thread pool is not running: \(error)")
        }
    }

    static func failure(_ what: String, _ path: String, errno: Int32) -> CopyError {
        let reason = String(cString: strerror(errno))
        let cause = SystemCallError(call: what, errno: errno)
        switch errno {
        case ENOSPC, EDQUOT:
            return CopyError(
                .noSpace, "no space left for \(path) (\(reason)); free space or choose another target", cause: cause)
        case EROFS, EACCES, EPERM:
            return CopyError(.target, "cannot \(what) \(path): \(reason); choose a writable location", cause: cause)
        default:
            return CopyError(.target, "cannot \(what) \(path): \(reason)", cause: cause)
        }
    }

    static func retrying(_ call: () -> Int) -> (Int, Int32) {
        while true {
            let result = call()
            if result >= 0 { return (result, 0) }
            if errno != EINTR { return (result, errno) }
        }
    }

    static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws(CopyError) -> TargetFile {
        let (fd, error) = retrying { Int(Glibc.open(path, flags | O_CLOEXEC, mode)) }
        guard fd >= 0 else { throw failure(flags & O_CREAT != 0 ? "create" : "open", path, errno: error) }
        return TargetFile(descriptor: Int32(fd), path: path)
    }

    static func size(_ file: TargetFile) throws(CopyError) -> UInt64 {
        var info = stat()
        guard fstat(file.descriptor, &info) == 0 else { throw failure("stat", file.path, errno: errno) }
        return UInt64(info.st_size)
    }

    static func truncate(_ file: TargetFile, to size: UInt64) throws(CopyError) {
        let (result, error) = retrying { Int(ftruncate(file.descriptor, off_t(size))) }
        if result < 0 { throw failure("resize", file.path, errno: error) }
    }

    static func writeAll(_ file: TargetFile, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(CopyError) {
        var done = 0
        while done < bytes.count {
            let (written, error) = retrying {
                pwrite(file.descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            }
            if written < 0 { throw failure("write", file.path, errno: error) }
            done += written
        }
        // Start writing these pages to disk now, so the disk works while the copy goes on instead of
        // all at the final fsync; errors surface at that fsync, which is what makes the copy durable.
        _ = pullback_start_writeback(file.descriptor, Int64(offset), Int64(bytes.count))
    }

    /// Makes a range read as zeros, freeing its blocks. Where the file system cannot punch holes, zeros are
    /// written instead.
    static func punchHole(_ file: TargetFile, at offset: UInt64, length: UInt64) throws(CopyError) {
        let (result, error) = retrying {
            Int(pullback_punch_hole(file.descriptor, Int64(offset), Int64(length)))
        }
        if result == 0 { return }
        guard error == EOPNOTSUPP || error == ENOSYS else { throw failure("zero a range of", file.path, errno: error) }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { chunk.deallocate() }
        chunk.initializeMemory(as: UInt8.self, repeating: 0)
        var done: UInt64 = 0
        while done < length {
            let count = Int(min(UInt64(chunk.count), length - done))
            try writeAll(file, UnsafeRawBufferPointer(rebasing: chunk[0..<count]), at: offset + done)
            done += UInt64(count)
        }
    }

    static func sync(_ file: TargetFile) throws(CopyError) {
        let (result, error) = retrying { Int(fsync(file.descriptor)) }
        if result < 0 { throw failure("flush", file.path, errno: error) }
    }

    static func close(_ file: TargetFile) {
        _ = Glibc.close(file.descriptor)
    }

    /// Flushes a directory, so that a rename or unlink in it is durable.
    static func syncDirectory(_ path: String) throws(CopyError) {
        let directory = try open(path, flags: O_RDONLY | O_DIRECTORY)
        defer { close(directory) }
        try sync(directory)
    }

    static func rename(_ from: String, to: String) throws(CopyError) {
        if Glibc.rename(from, to) != 0 { throw failure("rename to", to, errno: errno) }
    }

    static func remove(_ path: String) {
        _ = unlink(path)
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}

/// A failed system call, kept as the cause of a CopyError.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    /// What the call was doing.
    public var call: String
    /// The errno it failed with.
    public var errno: Int32

    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}
