import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive lock on one domain's folder in a repository, so that two backups of the same domain
/// never write into it at once. It is an `flock` on `<domain>/.lock`, released when the owner ends or
/// when the process dies, so a crashed run never leaves the domain locked.
public struct DomainLock: ~Copyable {
    private let descriptor: Int32
    /// The domain folder the lock protects.
    public let folder: String

    /// Takes the lock, or fails at once with `.locked` naming the process that holds it.
    public init(folder: String) throws(RepositoryError) {
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw RepositoryError(.io, "cannot create \(folder): \(error.localizedDescription)")
        }
        let path = folder + "/.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RepositoryError(.io, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            var holder = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &holder, holder.count, 0)
            close(fd)
            if reason == EWOULDBLOCK {
                let pid = String(decoding: holder.prefix(max(0, count)), as: UTF8.self)
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                throw RepositoryError(
                    .locked,
                    "another backup of this domain into \(folder) is running (process \(pid.isEmpty ? "unknown" : pid)); wait for it to finish"
                )
            }
            throw RepositoryError(.io, "cannot lock \(path): \(String(cString: strerror(reason)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        descriptor = fd
        self.folder = folder
    }

    deinit {
        close(descriptor)  // releases the flock
    }
}
