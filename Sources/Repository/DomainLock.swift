import FileIO
import Foundation
import SystemPackage

/// An exclusive lock on one domain's folder in a repository, so that two backups (or prunes) of the same domain
/// never write into it at once. It is an `flock` on `<domain>/.lock`, released when the owner ends or
/// when the process dies, so a crashed run never leaves the domain locked.
public struct DomainLock: ~Copyable {
    private let descriptor: FileDescriptor
    /// The domain folder the lock protects.
    public let folder: String

    /// Takes the lock, or fails at once with `.locked` naming the process that holds it.
    public init(folder: String) throws(RepositoryError) {
        if !(try BackupRepository.isRealFolder(folder)) {
            do throws(Errno) { try FilePaths.makeFolder(folder, permissions: FileSync.folderPermissions) } catch {
                // A concurrent first run may have made it; a symbolic link made meanwhile is refused below.
                guard error == .fileExists, try BackupRepository.isRealFolder(folder) else {
                    throw RepositoryError(failed: "create", folder, error)
                }
            }
        }
        let path = folder + "/.lock"
        // Never through a symbolic link: the pid written below would land in whatever file it names.
        let file = try FileSync.openConfined(
            path, .readWrite, options: .create, permissions: FileSync.filePermissions
        ).file
        let locked: Bool
        do throws(Errno) { locked = try file.tryLock() } catch {
            file.closeAfterUse()
            throw RepositoryError(failed: "lock", path, error)
        }
        guard locked else {
            let holder = Self.holder(of: file)
            file.closeAfterUse()
            throw RepositoryError(
                .locked,
                "another backup or prune of this domain in \(folder) is running (process \(holder ?? "unknown")); wait for it to finish"
            )
        }
        // Only to name the holder in the message above; the lock works without it.
        try? file.truncate(to: 0)
        try? file.write(Array("\(ProcessInfo.processInfo.processIdentifier)\n".utf8), at: 0)
        descriptor = file
        self.folder = folder
    }

    deinit {
        descriptor.closeAfterUse()  // releases the flock
    }

    /// The process id the holder wrote into the lock file, if it could be read.
    private static func holder(of file: FileDescriptor) -> String? {
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = (try? bytes.withUnsafeMutableBytes { buffer in try file.read(into: buffer, at: 0) }) ?? 0
        let pid = String(decoding: bytes.prefix(count), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return pid.isEmpty ? nil : pid
    }
}
