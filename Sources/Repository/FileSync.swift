import FileIO
import SystemPackage

/// Durable writes and renames: data and the folder entries that name it reach the disk before a point is visible.
/// Blocking calls: the repository makes them inside ``BlockingWork/run(_:)`` where a run is waiting on them.
enum FileSync {
    /// Writes `bytes` as the whole of `path` (mode 0644 less the umask) and flushes it.
    static func writeDurably(_ bytes: [UInt8], to path: String) throws(RepositoryError) {
        let file: FileDescriptor
        do throws(Errno) {
            file = try FileDescriptor.open(
                path: path, .writeOnly, options: [.create, .truncate], permissions: FilePermissions(rawValue: 0o644))
        } catch {
            throw RepositoryError(failed: "create", path, error)
        }
        defer { file.closeAfterUse() }
        do throws(Errno) { try file.write(bytes, at: 0) } catch { throw RepositoryError(failed: "write", path, error) }
        do throws(Errno) { try file.sync() } catch { throw RepositoryError(failed: "flush", path, error) }
    }

    /// Flushes the folder `path`, so that a rename or a new name in it is durable.
    static func syncFolder(_ path: String) throws(RepositoryError) {
        do throws(Errno) { try FilePaths.syncFolder(path) } catch {
            throw RepositoryError(failed: "flush", path, error)
        }
    }

    static func rename(_ source: String, to destination: String) throws(RepositoryError) {
        do throws(Errno) { try FilePaths.rename(source, to: destination) } catch {
            throw RepositoryError(failed: "rename \(source) to", destination, error)
        }
    }
}

extension RepositoryError {
    /// A failed file call, with the errno as the cause. A full disk (or quota) gets its own code and says what to
    /// do, so that a commit that runs out of space is recognisable.
    init(failed what: String, _ path: String, _ errno: Errno) {
        switch errno {
        case .noSpace, .diskQuotaExceeded:
            self.init(
                .noSpace, "no space left for \(path) (\(errno)); free space or choose another repository", cause: errno)
        default:
            self.init(.io, "cannot \(what) \(path): \(errno)", cause: errno)
        }
    }
}
