import FileIO
import SystemPackage

/// Where the qcow2 writer puts an image: clusters placed one after another from the start of the image (each written
/// once, several at a time from different threads, so not necessarily in order), then, last, the tables and the
/// header at the start, rewritten once everything they point to is durable. ``HostFile`` is the file; an object
/// being uploaded can be another. Writes are the hot path: the caller's buffer is written as it is, no copy.
protocol ImageSink: Sendable {
    /// The image's name, for messages.
    var path: String { get }
    /// Hashes what is written, when the writer was asked for its digest.
    var digest: AppendDigest? { get }

    /// Writes `bytes` at `offset`, and hashes them unless the caller did already (data clusters are hashed where
    /// they are placed).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, hashing: Bool) throws(QCOW2Error)
    /// Sets the image's size: its clusters end there.
    func truncate(to size: UInt64) throws(QCOW2Error)
    /// Makes what was written durable.
    func sync() throws(QCOW2Error)
    /// Makes the finished image visible (an object is, once its upload completes); after the header is written and
    /// synced.
    func seal() throws(QCOW2Error)
    /// Lets the image go.
    func close()
}

extension ImageSink {
    /// A file is visible from the start and durable once synced: nothing more to do.
    func seal() throws(QCOW2Error) {}

    /// Writes the array `bytes` at `offset` (tables, the header), hashing them.
    func write(_ bytes: [UInt8], at offset: UInt64) throws(QCOW2Error) {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(QCOW2Error) in try write(buffer, at: offset, hashing: true) }
        }.get()
    }
}

/// An open image file and the few calls the writer makes on it, each retried on EINTR and turned into a
/// QCOW2Error naming the file. The calls block; callers run them off Swift's cooperative threads.
struct HostFile: ImageSink {
    let descriptor: FileDescriptor
    let path: String
    /// The file's writes on their way to the disk.
    let writeback = WritebackWindow()
    /// Hashes what is written, when the writer was asked for its digest.
    let digest: AppendDigest?

    /// Creates `path`, which must not exist (not even as a symbolic link), with exactly `permissions` whatever
    /// the umask.
    static func create(
        _ path: String, permissions: FilePermissions = .ownerOnly, digest: AppendDigest? = nil
    ) throws(QCOW2Error) -> HostFile {
        do throws(Errno) {
            let descriptor = try FileDescriptor.createNew(path: path, .readWrite, permissions: permissions)
            return HostFile(descriptor: descriptor, path: path, digest: digest)
        } catch {
            throw QCOW2Error(failed: "create", path, error)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, hashing: Bool) throws(QCOW2Error) {
        do throws(Errno) { try descriptor.write(bytes, at: offset) } catch {
            throw QCOW2Error(failed: "write", path, error)
        }
        // Errors of the early writeback surface at the final fsync, which is what makes the file durable.
        writeback.wrote(at: offset, length: bytes.count, on: descriptor)
        if hashing { digest?.wrote(bytes, at: offset) }
    }

    func truncate(to size: UInt64) throws(QCOW2Error) {
        do throws(Errno) { try descriptor.truncate(to: size) } catch { throw QCOW2Error(failed: "resize", path, error) }
    }

    func sync() throws(QCOW2Error) {
        do throws(Errno) { try descriptor.sync() } catch { throw QCOW2Error(failed: "flush", path, error) }
    }

    func close() {
        descriptor.closeAfterUse()
    }
}

extension QCOW2Error {
    /// A failed system call on an image: what was attempted, on which file (and where), and the errno as the
    /// cause, so that callers can tell a missing file or a full disk from other I/O errors.
    init(failed what: String, _ path: String, _ errno: Errno, at offset: UInt64? = nil) {
        let place = offset.map { " at offset \($0)" } ?? ""
        self.init(.io, "cannot \(what) \(path)\(place): \(errno)", cause: errno)
    }
}
