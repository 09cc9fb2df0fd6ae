import FileIO
import Foundation
import SystemPackage

/// An exclusive lock on one domain's folder in a repository, so that two backups of the same domain
/// never write into it at once. It is an `flock` on `<domain>/.lock`, released when the owner ends or
/// when the process dies, so a crashed run never leaves the domain locked.
public struct DomainLock: ~Copyable {
    private let descriptor: FileDescriptor
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
        let file: FileDescriptor
        do throws(Errno) {
            file = try FileDescriptor.open(
                path: path, .readWrite, options: .create, permissions: FilePermissions(rawValue: 0o644))
        } catch {
            throw RepositoryError(failed: "open", path, error)
        }
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
                "another backup of this domain into \(folder) is running (process \(holder ?? "unknown")); wait for it to finish"
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
