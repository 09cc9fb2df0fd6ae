import FileIO
import SystemPackage

/// Durable writes and renames: data and the folder entries that name it reach the disk before a point is visible.
/// Blocking calls: the repository makes them inside ``BlockingWork/run(_:)`` where a run is waiting on them.
enum FileSync {
    /// The mode of every file a repository holds: a disk image, or what describes one, is as private as the disk.
    static let filePermissions = FilePermissions(rawValue: 0o600)
    /// The mode of every folder a repository holds.
    static let folderPermissions = FilePermissions(rawValue: 0o700)

    /// Writes `bytes` as the new file `path` (0600 whatever the umask) and flushes it. The name must be new: nothing
    /// there, not even a symbolic link, is opened or followed.
    static func writeDurably(_ bytes: [UInt8], to path: String) throws(RepositoryError) {
        let file: FileDescriptor
        do throws(Errno) {
            file = try FileDescriptor.createNew(path: path, .writeOnly, permissions: filePermissions)
        } catch {
            throw RepositoryError(failed: "create", path, error)
        }
        defer { file.closeAfterUse() }
        do throws(Errno) { try file.write(bytes, at: 0) } catch { throw RepositoryError(failed: "write", path, error) }
        do throws(Errno) { try file.sync() } catch { throw RepositoryError(failed: "flush", path, error) }
    }

    /// Makes the new folder `path`, 0700 whatever the umask.
    static func makeFolder(_ path: String) throws(RepositoryError) {
        do throws(Errno) { try FilePaths.makeFolder(path, permissions: folderPermissions) } catch {
            throw RepositoryError(failed: "create", path, error)
        }
    }

    /// Opens the repository file `path` confined: a symbolic link is not followed, and anything but a regular file
    /// (a FIFO, a device, a folder) is refused before it is read or written; a FIFO does not block the open. The
    /// caller closes the descriptor.
    static func openConfined(
        _ path: String, _ mode: FileDescriptor.AccessMode = .readOnly, options: FileDescriptor.OpenOptions = [],
        permissions: FilePermissions? = nil
    ) throws(RepositoryError) -> (file: FileDescriptor, status: Stat) {
        do throws(ImageFileRefusal) {
            let (file, status) = try FileDescriptor.openChecked(
                path: path, mode, options: options, permissions: permissions, followingSymlinks: false,
                allowingDevices: false)
            return (file, status)
        } catch {
            switch error {
            case .symbolicLink:
                throw RepositoryError(
                    .corrupt, "\(path) is a symbolic link; pullback opens only the repository's own files, never links")
            case .refused:
                throw RepositoryError(.corrupt, "\(path) is not a regular file; the repository is damaged")
            case .failed(let call, let errno):
                throw RepositoryError(failed: call, path, errno)
            }
        }
    }

    /// The contents of the small repository file `path` (a manifest, a job record, saved XML), or nil when there is
    /// none. Read confined: a symbolic link, a FIFO, a device or a folder by that name is refused (never opened
    /// through, never blocked on), and so is a file over ``RepositoryNames/maxSmallFileSize``.
    static func readSmallFile(_ path: String) throws(RepositoryError) -> [UInt8]? {
        try readFile(path, limit: UInt64(RepositoryNames.maxSmallFileSize))
    }

    /// The contents of the repository file `path`, read confined as ``readSmallFile(_:)`` does, when it holds at most
    /// `limit` bytes; nil when there is none.
    static func readFile(_ path: String, limit: UInt64) throws(RepositoryError) -> [UInt8]? {
        guard FilePaths.exists(path) else { return nil }
        let (file, status) = try openConfined(path)
        defer { file.closeAfterUse() }
        guard status.size <= limit else {
            throw RepositoryError(
                .corrupt,
                "\(path) is \(status.size) bytes, more than a repository file may be; the repository is damaged")
        }
        // One byte more than its size, to notice a file that grows while it is read.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(status.size) + 1, alignment: 1)
        defer { buffer.deallocate() }
        var count = 0
        while count < buffer.count {
            let read: Int
            do throws(Errno) {
                read = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]), at: UInt64(count))
            } catch {
                throw RepositoryError(failed: "read", path, error)
            }
            if read == 0 { break }
            count += read
        }
        guard count <= status.size else {
            throw RepositoryError(.corrupt, "\(path) grew while it was read; the repository is damaged")
        }
        return Array(buffer.prefix(count))
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
