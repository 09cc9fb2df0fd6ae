internal import CLinuxIO
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An open image file and the few calls the writer makes on it, each retried on EINTR and turned into a
/// QCOW2Error naming the file. The calls block; callers run them off Swift's cooperative threads.
struct HostFile: Sendable {
    let descriptor: Int32
    let path: String

    static func create(_ path: String) throws(QCOW2Error) -> HostFile {
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create", path, errno: errno) }
        return HostFile(descriptor: fd, path: path)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(QCOW2Error) {
        var done = 0
        while done < bytes.count {
            let written = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if written < 0 {
                if errno == EINTR { continue }
                throw Self.failure("write", path, errno: errno)
            }
            done += written
        }
        // Start writing these pages to disk now, so the disk works while the copy goes on instead of
        // all at the final fsync; errors surface at that fsync.
        _ = pullback_start_writeback(descriptor, Int64(offset), Int64(bytes.count))
    }

    func write(_ bytes: [UInt8], at offset: UInt64) throws(QCOW2Error) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(QCOW2Error) in try write(raw, at: offset) } }
        try result.get()
    }

    func truncate(to size: UInt64) throws(QCOW2Error) {
        while ftruncate(descriptor, off_t(size)) != 0 {
            if errno != EINTR { throw Self.failure("resize", path, errno: errno) }
        }
    }

    func sync() throws(QCOW2Error) {
        while fsync(descriptor) != 0 {
            if errno != EINTR { throw Self.failure("flush", path, errno: errno) }
        }
    }

    func close() {
        _ = Glibc.close(descriptor)
    }

    static func failure(_ what: String, _ path: String, errno: Int32) -> QCOW2Error {
        QCOW2Error(.io, "cannot \(what) \(path): \(String(cString: strerror(errno)))", cause: SystemError(errno: errno))
    }
}

/// The errno of a failed system call, kept as the cause of a QCOW2Error so callers can tell a full disk.
public struct SystemError: Error, Sendable, Equatable {
    public var errno: Int32
}
