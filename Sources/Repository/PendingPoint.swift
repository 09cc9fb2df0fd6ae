import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A backup point being written, in `<id>.partial`: never listed and never a parent until committed.
public final class PendingPoint: Sendable {
    /// The id the point will have.
    public let id: String
    /// The folder being written (`<id>.partial`).
    public let folder: String

    init(id: String, folder: String) {
        self.id = id
        self.folder = folder
    }

    /// Where disk `target`'s image goes: `<folder>/<target>.qcow2`.
    public func imagePath(for target: String) -> String { folder + "/" + Self.imageName(for: target) }

    /// The image file name of disk `target` inside a point.
    public static func imageName(for target: String) -> String { target + ".qcow2" }

    /// Writes a small file (domain or checkpoint XML) into the point, durably.
    public func write(_ contents: String, to name: String) throws(RepositoryError) {
        try FileSync.writeDurably(Array(contents.utf8), to: folder + "/" + name)
    }
}

/// Durable writes and renames: data and the directory entries that name it reach the disk before a point
/// is visible.
enum FileSync {
    static func writeDurably(_ bytes: [UInt8], to path: String) throws(RepositoryError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("create", path) }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(done)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            done += written
        }
        guard fsync(fd) == 0 else { throw failure("flush", path) }
    }

    static func syncDirectory(_ path: String) throws(RepositoryError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw failure("flush", path) }
    }

    static func rename(_ from: String, to: String) throws(RepositoryError) {
        guard Glibc.rename(from, to) == 0 else { throw failure("rename \(from) to", to) }
    }

    static func failure(_ what: String, _ path: String) -> RepositoryError {
        RepositoryError(.io, "cannot \(what) \(path): \(String(cString: strerror(errno)))")
    }
}
