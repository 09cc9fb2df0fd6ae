import FileIO
import Foundation
import SystemPackage

extension BackupRepository {
    /// What tightening the modes of a domain's folder changed.
    public struct Tightened: Sendable, Equatable {
        /// The domain folder that was walked (the root and its `repository.json` are tightened too).
        public var folder: String
        /// How many files and folders had a wider mode than 0600 (files) or 0700 (folders).
        public var count: Int
    }

    /// Sets 0700 on the repository's root, the domain's folder and every point folder in it, and 0600 on
    /// `repository.json` and every file in those folders (the lock, job records, manifests, XML, images), for a
    /// repository made by a build that left them 0755 and 0644. Symbolic links, FIFOs and devices are left alone,
    /// never opened (a root that is a symbolic link keeps its target's mode); files of another user cannot be changed
    /// and are skipped. Under the domain's lock, as the first thing a backup does.
    public func tightenPermissions(of domain: String, lock: borrowing DomainLock) -> Tightened {
        let domainFolder = folder(of: domain)
        var count = 0
        if Self.tighten(root, as: .directory) { count += 1 }
        if Self.tighten(root + "/" + RepositoryIdentity.fileName, as: .regular) { count += 1 }
        if Self.tighten(domainFolder, as: .directory) { count += 1 }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: domainFolder)) ?? [] {
            let path = domainFolder + "/" + name
            guard let status = try? FilePaths.status(ofName: path) else { continue }
            if status.type == .regular {
                if Self.tighten(path, as: .regular) { count += 1 }
            } else if status.type == .directory {
                if Self.tighten(path, as: .directory) { count += 1 }
                for file in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                    if Self.tighten(path + "/" + file, as: .regular) { count += 1 }
                }
            }
        }
        return Tightened(folder: domainFolder, count: count)
    }

    /// Sets the repository's mode on `path` if it is a `type` (not a link to one) with a wider mode; whether it did.
    @discardableResult
    static func tighten(_ path: String, as type: FileType) -> Bool {
        let wanted = type == .directory ? FileSync.folderPermissions : FileSync.filePermissions
        let options: FileDescriptor.OpenOptions =
            type == .directory ? [.directory, .noFollow] : [.noFollow, .nonBlocking]
        guard let file = try? FileDescriptor.open(path: path, .readOnly, options: options) else { return false }
        defer { file.closeAfterUse() }
        guard let status = try? file.stat(), status.type == type,
            status.permissions.rawValue & 0o7777 != wanted.rawValue
        else { return false }
        return (try? file.setPermissions(wanted)) != nil
    }
}
