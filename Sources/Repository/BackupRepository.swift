import FileIO
import Foundation
import SystemPackage

/// A folder of backups: `<root>/<domain>/<id>/` per committed point, as laid out in the design's contract.
///
/// Points become visible only by an atomic rename of a fully written and flushed `<id>.partial` folder, so
/// listing never shows a half-written point, and a failed run leaves nothing a later run would use.
public struct BackupRepository: Sendable {
    /// The repository's root folder.
    public let root: String

    /// The repository at `root`, not yet checked: every call that reads or writes checks that `root` is one (see
    /// ``requireRepository()``), and none makes it. ``open(root:)`` checks at once; ``create(root:)`` makes one.
    public init(root: String) {
        self.root = root
    }

    /// The folder holding `domain`'s points.
    public func folder(of domain: String) -> String { root + "/" + domain }

    /// The domains that have a folder in the repository (a real folder with a valid name), sorted; throws
    /// ``RepositoryError/Code/notARepository`` when the root is not a repository.
    public func domainNames() throws(RepositoryError) -> [String] {
        try requireRepository()
        let names = try Self.names(in: root)
        return names.filter { name in
            RepositoryNames.isValid(name) && (try? FilePaths.status(ofName: folder(of: name)))?.type == .directory
        }.sorted()
    }

    /// The repository's identity (`repository.json`): see ``RepositoryIdentity``. Throws
    /// ``RepositoryError/Code/notARepository`` when the root is not a repository.
    public func identity() throws(RepositoryError) -> RepositoryIdentity {
        try requireRepository()
        guard let identity = try RepositoryIdentity.load(root: root) else {
            throw RepositoryError(.notARepository, "not a Pullback repository: \(root) (its repository.json vanished)")
        }
        return identity
    }

    /// The committed points of `domain`, oldest first. Partial folders are not points. Every manifest is read
    /// confined (no symbolic link followed) and validated (``BackupManifest/validate(id:domain:file:)``) before it is
    /// returned; the root must be a repository (have a `repository.json`).
    public func points(of domain: String) throws(RepositoryError) -> [BackupPoint] {
        try requireRepository()
        try RepositoryNames.checkRequested(domain, as: "domain")
        let domainFolder = folder(of: domain)
        guard try Self.isRealFolder(domainFolder) else { return [] }
        let names = try Self.names(in: domainFolder)
        var points: [BackupPoint] = []
        for name in names.sorted() where !name.hasPrefix(".") && !name.hasSuffix(".partial") {
            let pointFolder = domainFolder + "/" + name
            guard try Self.isRealFolder(pointFolder) else { continue }
            let manifestPath = pointFolder + "/manifest.json"
            guard let bytes = try FileSync.readSmallFile(manifestPath) else { continue }
            try RepositoryNames.check(name, field: "the point id (its folder)", in: manifestPath)
            let manifest = try BackupManifest.decodeValid(Data(bytes), from: manifestPath, id: name, domain: domain)
            points.append(BackupPoint(id: name, folder: pointFolder, manifest: manifest))
        }
        return points
    }

    /// The committed points of `domain`, oldest first, as ``points(of:)``; throws ``RepositoryError/Code/notFound``,
    /// naming the domains that have points, when it has none: a mistyped domain is an error, as in restore.
    public func requiredPoints(of domain: String) throws(RepositoryError) -> [BackupPoint] {
        let points = try points(of: domain)
        guard points.isEmpty else { return points }
        var known: [String] = []
        for name in try domainNames() where name != domain && (try? self.points(of: name))?.isEmpty == false {
            known.append(name)
        }
        throw RepositoryError(
            .notFound,
            "the repository \(root) has no backup of \(domain)"
                + (known.isEmpty ? "" : "; it has backups of: \(known.joined(separator: ", "))"))
    }

    /// The point `id` of `domain`, or the newest one for `latest`.
    public func point(_ id: String, of domain: String) throws(RepositoryError) -> BackupPoint {
        let points = try points(of: domain)
        let found = id == "latest" ? points.last : points.first { $0.id == id }
        guard let found else {
            let known = points.map(\.id).joined(separator: ", ")
            throw RepositoryError(
                .notFound,
                points.isEmpty
                    ? "the repository \(root) has no backup of \(domain)"
                    : "\(domain) has no point \(RepositoryNames.quoted(id)) in \(root); its points are: \(known)")
        }
        return found
    }

    /// Throws ``RepositoryError/Code/notARepository`` unless the root is a folder with a `repository.json`: a
    /// mistyped `--repo` is named as such, not taken for an empty repository, and nothing is made. A URL is
    /// ``RepositoryError/Code/unsupportedLocation``.
    public func requireRepository() throws(RepositoryError) {
        try RepositoryLocation.check(root)
        let identity = root + "/" + RepositoryIdentity.fileName
        let rootStatus: Stat?
        do throws(Errno) { rootStatus = try Self.status(following: root) } catch {
            throw RepositoryError(failed: "inspect", root, error)
        }
        let identityStatus = try? FilePaths.status(ofName: identity)
        guard rootStatus?.type == .directory, identityStatus?.type == .regular else {
            let why: String
            let initHint =
                "; check --repo, or create it with `pullback init --repo \(RepositoryLocation.shellWord(root))` (or `pullback backup --init`)"
            if rootStatus == nil {
                why = "(nothing is there)" + initHint
            } else if rootStatus?.type != .directory {
                why = "(it is not a folder); check --repo"
            } else if (try? Self.names(in: root).isEmpty) == true {
                why = "(an empty folder)" + initHint
            } else {
                why = "(it has no \(RepositoryIdentity.fileName)); check --repo"
            }
            throw RepositoryError(.notARepository, "not a Pullback repository: \(root) \(why)")
        }
    }

    /// The names in the folder `path` (a symbolic link to a folder is followed), sorted; the failure names the path
    /// and the errno.
    static func names(in path: String) throws(RepositoryError) -> [String] {
        do throws(Errno) {
            let folder = try FileDescriptor.open(path: path, .readOnly, options: .directory)
            defer { folder.closeAfterUse() }
            return try FolderListing.names(in: folder).map(\.description).sorted()
        } catch {
            throw RepositoryError(failed: "list", path, error)
        }
    }

    /// Whether `path` is a folder itself (not a symbolic link to one); false when nothing has that name. Anything
    /// else by that name is a damaged repository.
    static func isRealFolder(_ path: String) throws(RepositoryError) -> Bool {
        let status: Stat?
        do throws(Errno) { status = try FilePaths.status(ofName: path) } catch {
            throw RepositoryError(failed: "inspect", path, error)
        }
        guard let status else { return false }
        if status.type == .symbolicLink {
            throw RepositoryError(
                .corrupt, "\(path) is a symbolic link; a repository's folders must be its own, not links to elsewhere")
        }
        return status.type == .directory
    }

    /// Takes the domain's lock (see ``DomainLock``), making the domain's folder (0700) when it is not there yet. The
    /// root must be a repository already: nothing makes one but ``create(root:)``.
    public func lock(_ domain: String) throws(RepositoryError) -> DomainLock {
        try RepositoryNames.checkRequested(domain, as: "domain")
        try requireRepository()
        return try DomainLock(folder: folder(of: domain))
    }

    /// Writes a new point of `domain` through `body`, which fills the pending folder and returns the
    /// manifest. Stale `.partial` folders of killed runs are removed first; the caller holds the lock.
    /// The point is committed (manifest written, folder flushed, renamed to its id) only if `body` returns;
    /// if it throws, the pending folder is removed and the error rethrown.
    public func withNewPoint(
        of domain: String, lock: borrowing DomainLock, started: Date,
        _ body: (PendingPoint) async throws -> BackupManifest
    ) async throws -> BackupPoint {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        let domainFolder = folder(of: domain)
        // Removing a killed run's images and flushing are slow, blocking calls: they run on the I/O pool.
        let pending = try await BlockingWork.run { () throws(RepositoryError) -> PendingPoint in
            try Self.removePartials(in: domainFolder)
            let id = try Self.freshID(for: started, in: domainFolder)
            let pending = PendingPoint(id: id, folder: domainFolder + "/" + id + ".partial")
            try FileSync.makeFolder(pending.folder)
            return pending
        }
        do {
            let manifest = try await body(pending)
            let bytes = Array(try BackupManifest.encoder.encode(manifest))
            let committed = domainFolder + "/" + pending.id
            try await BlockingWork.run { () throws(RepositoryError) in
                // Whoever wrote them and whatever the umask, the point's files are private before it is visible.
                for name in (try? FileManager.default.contentsOfDirectory(atPath: pending.folder)) ?? [] {
                    Self.tighten(pending.folder + "/" + name, as: .regular)
                }
                try FileSync.writeDurably(bytes, to: pending.folder + "/manifest.json")
                try FileSync.syncFolder(pending.folder)
                try FileSync.rename(pending.folder, to: committed)
                // The point exists from here on: failing now would report a point that is listed as not made
                // (and the caller would drop its checkpoint). If this flush fails and the machine then crashes,
                // the rename may be lost, and the chain simply continues from the point before.
                try? FileSync.syncFolder(domainFolder)
            }
            return BackupPoint(id: pending.id, folder: committed, manifest: manifest)
        } catch {
            // In a task of its own: a cancelled run (SIGINT) must still remove its folder.
            let folder = pending.folder
            await Task {
                _ = try? await BlockingWork.run { () throws(RepositoryError) in try Self.removeTree(folder) }
            }.value
            throw error
        }
    }

    /// Removes every `.partial` folder of `domainFolder`: a backup's pending point, a prune's staged rewrite or
    /// half-removed point (see ``rewrite(_:of:lock:_:)``), all of killed runs when the caller holds the lock. The
    /// domain's folder is opened once (not through a symbolic link) and each is removed relative to it, through
    /// descriptors (``FileIO/FileTree``): a writer racing the removal cannot steer it out of the repository.
    static func removePartials(in domainFolder: String) throws(RepositoryError) {
        let opened: FileDescriptor?
        do throws(Errno) { opened = try FilePaths.openFolder(domainFolder) } catch {
            throw RepositoryError(failed: "open", domainFolder, error)
        }
        guard let folder = opened else { return }
        defer { folder.closeAfterUse() }
        let names: [EntryName]
        do throws(Errno) { names = try FolderListing.names(in: folder) } catch {
            throw RepositoryError(failed: "list", domainFolder, error)
        }
        for name in names where name.hasSuffix(".partial") {
            // Only a real folder is emptied; anything else by that name (a symbolic link to a folder outside the
            // repository, say) loses its name and nothing more.
            do throws(FileTreeError) { try FileTree.remove(named: name, in: folder) } catch {
                throw RepositoryError(.io, "\(error.under(domainFolder))", cause: error)
            }
        }
    }

    /// The id for `date`, made unique among existing points (two points in one second get `-2`, `-3`...).
    private static func freshID(for date: Date, in domainFolder: String) throws(RepositoryError) -> String {
        let base = BackupPoint.id(for: date)
        var id = base
        var suffix = 2
        // Nor the id of a run whose job record is still there.
        while FilePaths.exists(domainFolder + "/" + id)
            || FilePaths.exists(domainFolder + "/" + JobRecord.filePrefix + id + JobRecord.fileSuffix)
        {
            id = "\(base)-\(suffix)"
            suffix += 1
        }
        return id
    }
}
