import FileIO
import Foundation
import SystemPackage

/// The on-disk steps of `prune`, each of which leaves every listed point restorable and verifiable, whenever the
/// process is killed:
///
/// 1. **Rewrite** an incremental point as a synthetic full (``rewrite(_:of:lock:_:)``). The new images, manifest and
///    saved XML are written into `<domain>/<id>.rewrite.partial/` (never listed) and flushed, then that folder and the
///    point's folder swap names in one atomic `renameat2(RENAME_EXCHANGE)`, and the domain folder is flushed. Before
///    the swap the point is its old self, after it the new one: manifest and images change together, and a child's
///    backing file `../<id>/<target>.qcow2` names the same disk content either way. The old folder, now under the
///    `.partial` name, is removed afterwards.
/// 2. **Remove** a point (``remove(_:of:lock:)``) once no listed point is based on it: its folder is renamed to
///    `<domain>/<id>.removed.partial` (gone from the listing in one step), the domain folder flushed, then emptied.
///
/// A killed prune leaves at most `.partial` folders, which no reader lists and which the next prune or backup removes
/// (``discardUnfinishedWork(of:lock:)``, as a backup's own `.partial` folder). Whether a rewrite's swap happened or
/// not, the folder under the `.partial` name is disposable: half-written new content before the swap, the replaced
/// old content after it. The caller orders the steps (rewrites before removals, a point before its parent) and holds
/// the domain's lock throughout.
extension BackupRepository {
    /// The suffix of the folder a rewrite stages its point in.
    static let rewriteSuffix = ".rewrite.partial"
    /// The suffix a removed point's folder has while it is emptied.
    static let removalSuffix = ".removed.partial"
    /// The files a point keeps beside its manifest and images, carried over by a rewrite.
    static let savedFiles = ["domain.xml", "checkpoint.xml"]

    /// Removes what killed runs left in `domain`'s folder: backups' `.partial` folders and a prune's staged rewrites
    /// and half-removed points. Under the lock, so none of them belongs to a run still alive. On the I/O thread pool:
    /// a tree may hold thousands of files.
    public func discardUnfinishedWork(of domain: String, lock: borrowing DomainLock) async throws(RepositoryError) {
        try RepositoryNames.checkRequested(domain, as: "domain")
        let domainFolder = folder(of: domain)
        try await BlockingWork.run { () throws(RepositoryError) in try Self.removePartials(in: domainFolder) }
    }

    /// Replaces `point` with the point `body` writes, atomically (see the type's description): `body` fills the
    /// staging folder with every disk's image (`imagePath(for:)`) and returns the new manifest; the point's saved XML
    /// is carried over. If `body` throws, the staging folder is removed and the point is left as it was. Returns the
    /// new point. Fails with ``RepositoryError/Code/io`` where the file system cannot swap two folders atomically.
    public func rewrite(
        _ point: BackupPoint, of domain: String, lock: borrowing DomainLock,
        _ body: (PendingPoint) async throws -> BackupManifest
    ) async throws -> BackupPoint {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        let domainFolder = folder(of: domain)
        let target = domainFolder + "/" + point.id
        let staging = PendingPoint(id: point.id, folder: target + Self.rewriteSuffix)
        try await BlockingWork.run { () throws(RepositoryError) in
            try Self.removeTree(staging.folder)
            try FileSync.makeFolder(staging.folder)
            for name in Self.savedFiles {
                if let text = try point.savedFile(name) { try staging.write(text, to: name) }
            }
        }
        do {
            let manifest = try await body(staging)
            try manifest.validate(id: point.id, domain: domain, file: staging.folder + "/manifest.json")
            let bytes = Array(try BackupManifest.encoder.encode(manifest))
            try await BlockingWork.run { () throws(RepositoryError) in
                for name in (try? FileManager.default.contentsOfDirectory(atPath: staging.folder)) ?? [] {
                    Self.tighten(staging.folder + "/" + name, as: .regular)
                }
                try FileSync.writeDurably(bytes, to: staging.folder + "/manifest.json")
                try FileSync.syncFolder(staging.folder)
                guard try Self.isRealFolder(target) else {
                    throw RepositoryError(.notFound, "point \(point.id) of \(domain) vanished during the prune")
                }
                do throws(Errno) { try FilePaths.exchange(staging.folder, with: target) } catch {
                    throw RepositoryError(
                        .io,
                        error == .invalidArgument
                            ? "the file system of \(domainFolder) cannot swap two folders atomically (renameat2 RENAME_EXCHANGE), which rewriting point \(point.id) as a full one needs; keep more points, so that the oldest kept one is full"
                            : "cannot swap \(staging.folder) and \(target): \(error)", cause: error)
                }
                // The swap is the commit; if this flush fails and the machine crashes, the point is its old self.
                try? FileSync.syncFolder(domainFolder)
                // The old point, now under the staging name: the next prune or backup removes what is left.
                try? Self.removeTree(staging.folder)
            }
            return BackupPoint(id: point.id, folder: target, manifest: manifest)
        } catch {
            // In a task of its own: a cancelled prune (SIGINT) must still remove its staging folder.
            let folder = staging.folder
            await Task {
                _ = try? await BlockingWork.run { () throws(RepositoryError) in try Self.removeTree(folder) }
            }.value
            throw error
        }
    }

    /// Removes `point` from the repository: gone from the listing in one rename, then emptied (see the type's
    /// description). The caller makes sure that no listed point is based on it.
    public func remove(_ point: BackupPoint, of domain: String, lock: borrowing DomainLock)
        async throws(RepositoryError)
    {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        try RepositoryNames.checkRequested(point.id, as: "point")
        let domainFolder = folder(of: domain)
        let path = domainFolder + "/" + point.id
        let removed = path + Self.removalSuffix
        try await BlockingWork.run { () throws(RepositoryError) in
            guard try Self.isRealFolder(path) else {
                throw RepositoryError(.notFound, "point \(point.id) of \(domain) vanished during the prune")
            }
            try Self.removeTree(removed)
            try FileSync.rename(path, to: removed)
            try FileSync.syncFolder(domainFolder)
            try Self.removeTree(removed)
        }
    }

    /// The bytes the files of `point`'s folder take on disk (allocated blocks, not apparent sizes); symbolic links,
    /// FIFOs and devices count nothing. Saturates rather than traps.
    public func allocatedBytes(of point: BackupPoint) -> UInt64 {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: point.folder)) ?? []
        return names.reduce(0) { total, name in
            let (sum, overflow) = total.addingReportingOverflow(allocatedBytes(ofFile: point.folder + "/" + name))
            return overflow ? .max : sum
        }
    }

    /// The bytes the regular file `path` takes on disk; anything else, or nothing by that name, counts nothing.
    public func allocatedBytes(ofFile path: String) -> UInt64 {
        guard let status = try? FilePaths.status(ofName: path), status.type == .regular, status.blocksAllocated >= 0
        else { return 0 }
        let (bytes, overflow) = UInt64(status.blocksAllocated).multipliedReportingOverflow(by: 512)
        return overflow ? .max : bytes
    }

    /// Removes the folder `path` and everything in it; nothing when there is nothing by that name, and only the name
    /// when it is not a real folder (a symbolic link loses its name, never what it points to). Removed through
    /// descriptors (``FileIO/FileTree``), so a writer racing the removal cannot steer it out of the repository.
    static func removeTree(_ path: String) throws(RepositoryError) {
        do throws(FileTreeError) { try FileTree.remove(atPath: path) } catch {
            throw RepositoryError(.io, error.description, cause: error)
        }
    }
}
