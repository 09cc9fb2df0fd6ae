import FileIO
import SystemPackage

extension BackupRepository {
    /// Makes a new repository at `root`: the folder (and any missing parent) 0700, and its identity
    /// (`repository.json`, 0600). `root` may be a new path or an empty folder; a repository already there is
    /// ``RepositoryError/Code/alreadyARepository``, and a folder with anything in it is refused, never adopted: a
    /// mistyped path must not quietly turn someone's folder into a repository. A URL is
    /// ``RepositoryError/Code/unsupportedLocation``. This is `pullback init`.
    public static func create(root: String) throws(RepositoryError) -> BackupRepository {
        try RepositoryLocation.check(root)
        let status: Stat?
        do throws(Errno) { status = try Self.status(following: root) } catch {
            throw RepositoryError(failed: "inspect", root, error)
        }
        switch status?.type {
        case nil:
            try makeFolders(root)
        case .directory:
            if try RepositoryIdentity.load(root: root) != nil {
                throw RepositoryError(.alreadyARepository, "\(root) is a Pullback repository already")
            }
            guard try isEmptyFolder(root) else {
                throw RepositoryError(
                    .notARepository,
                    "\(root) is a folder with files in it and not a Pullback repository; pullback makes a repository only in a new or empty folder: choose another path"
                )
            }
            // An empty folder made by someone else (mkdir under umask 022, say) becomes as private as a new one.
            do throws(Errno) { try FilePaths.setPermissions(root, FileSync.folderPermissions) } catch {
                throw RepositoryError(failed: "set the mode of", root, error)
            }
        default:
            throw RepositoryError(.notARepository, "\(root) is not a folder; choose another path for the repository")
        }
        _ = try RepositoryIdentity.create(root: root)
        return BackupRepository(root: root)
    }

    /// The repository at `root`, after checking that it is one (see ``requireRepository()``): a URL, a missing path
    /// or a folder without `repository.json` is refused, and nothing is made.
    public static func open(root: String) throws(RepositoryError) -> BackupRepository {
        let repository = BackupRepository(root: root)
        try repository.requireRepository()
        return repository
    }

    /// The repository at `root`, made first (``create(root:)``) when nothing or an empty folder is there: for
    /// `backup --init`, which scripts pass on every run. A folder with other files in it is still refused.
    public static func openOrCreate(root: String) throws(RepositoryError) -> BackupRepository {
        do {
            return try open(root: root)
        } catch  where error.code == .notARepository {
            do {
                return try create(root: root)
            } catch  where error.code == .alreadyARepository {
                // Another process made it in between.
                return try open(root: root)
            }
        }
    }

    /// What `path` is, following a symbolic link (a repository's root may be a link to where the space is), or nil
    /// when nothing has that name.
    static func status(following path: String) throws(Errno) -> Stat? {
        do {
            return try Stat(FilePath(path))
        } catch .noSuchFileOrDirectory {
            return nil
        }
    }

    /// Whether the folder `path` has no entries but the temporary identity files of other processes making the
    /// repository at the same time (of which one wins: see ``RepositoryIdentity/create(root:)``).
    private static func isEmptyFolder(_ path: String) throws(RepositoryError) -> Bool {
        let temporary = "." + RepositoryIdentity.fileName + "."
        return try names(in: path).allSatisfy { $0.hasPrefix(temporary) && $0.hasSuffix(".tmp") }
    }

    /// Makes `path` and every missing folder above it, each 0700; an error names the folder and the errno's text.
    package static func makeFolders(_ path: String) throws(RepositoryError) {
        func trimmed(_ path: Substring) -> String {
            var path = path
            while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
            return String(path)
        }
        var missing: [String] = []
        var current = trimmed(path[...])
        while !current.isEmpty, current != "/", !FilePaths.exists(current) {
            missing.append(current)
            guard let slash = current.lastIndex(of: "/") else { break }
            current = trimmed(current[..<slash])
        }
        for folder in missing.reversed() {
            do throws(Errno) {
                try FilePaths.makeFolder(folder, permissions: FileSync.folderPermissions)
            } catch  where error == .fileExists {
                // Made in between by another process making the same repository.
            } catch {
                throw RepositoryError(failed: "create", folder, error)
            }
        }
    }
}
