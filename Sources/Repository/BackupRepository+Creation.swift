import FileIO
import Storage
import SystemPackage

extension BackupRepository {
    /// Makes a new repository at `root`: the folder (and any missing parent) 0700, and its identity
    /// (`repository.json`, 0600). `root` may be a new path or an empty folder; a repository already there is
    /// ``RepositoryError/Code/alreadyARepository``, and a folder with anything in it is refused, never adopted: a
    /// mistyped path must not quietly turn someone's folder into a repository. A URL is
    /// ``RepositoryError/Code/unsupportedLocation``. This is `pullback init`.
    ///
    /// With `keyFile`, the repository is encrypted (`init --encrypt`): every object but its `repository.json` is
    /// sealed under the key the file holds (see ``RepositoryKeyFile``, ``RepositoryEncryption``).
    public static func create(root: String, keyFile: String? = nil) throws(RepositoryError) -> BackupRepository {
        try RepositoryLocation.check(root)
        return try create(in: RepositoryStores.baseStore(for: root), keyFile: keyFile)
    }

    /// Makes a new repository in `store`, as ``create(root:keyFile:)`` does in a folder.
    public static func create(in store: any ObjectStore, keyFile: String? = nil) throws(RepositoryError)
        -> BackupRepository
    {
        // The key file is read (and a passphrase stretched) before anything is made: a bad one leaves nothing behind.
        let sealing = try keyFile.map { file throws(RepositoryError) in
            try RepositoryEncryption.new(for: RepositoryKeyFile.read(file))
        }
        let root = store.location(of: nil)
        let state = try storeStep { () throws(StoreError) in try store.rootState() }
        switch state {
        case .absent:
            try storeStep { () throws(StoreError) in try store.createRoot() }
        case .notAStore:
            throw RepositoryError(.notARepository, "\(root) is not a folder; choose another path for the repository")
        case .populated, .empty:
            if try RepositoryIdentity.load(from: store) != nil {
                throw RepositoryError(.alreadyARepository, "\(root) is a Pullback repository already")
            }
            // Only the temporary identity files of other processes making the repository at the same time (of which
            // one wins: see ``RepositoryIdentity/create(in:)``) may be there.
            let temporary = "." + RepositoryIdentity.fileName + "."
            guard case .empty(let temporaries) = state, temporaries.allSatisfy({ $0.hasPrefix(temporary) }) else {
                throw RepositoryError(
                    .notARepository,
                    "\(root) is a folder with files in it and not a Pullback repository; pullback makes a repository only in a new or empty folder: choose another path"
                )
            }
            // An empty folder made by someone else (mkdir under umask 022, say) becomes as private as a new one.
            try storeStep { () throws(StoreError) in try store.createRoot() }
        }
        let identity = try RepositoryIdentity.create(in: store, encryption: sealing?.0)
        guard let key = sealing?.1 else { return BackupRepository(store: store) }
        return BackupRepository(store: RepositorySealing.sealed(store, identity: identity, key: key))
    }

    /// The repository at `root`, after checking that it is one (see ``requireRepository()``): a URL, a missing path
    /// or a folder without `repository.json` is refused, and nothing is made.
    public static func open(root: String) throws(RepositoryError) -> BackupRepository {
        let repository = BackupRepository(root: root)
        try repository.requireRepository()
        return repository
    }

    /// The repository at `root`, made first (``create(root:keyFile:)``, encrypted with `keyFile` when given) when
    /// nothing or an empty folder is there: for `backup --init`, which scripts pass on every run. A folder with other
    /// files in it is still refused.
    public static func openOrCreate(root: String, keyFile: String? = nil) throws(RepositoryError) -> BackupRepository {
        do {
            return try open(root: root)
        } catch  where error.code == .notARepository {
            do {
                return try create(root: root, keyFile: keyFile)
            } catch  where error.code == .alreadyARepository {
                // Another process made it in between.
                return try open(root: root)
            }
        }
    }

    /// Makes `path` and every missing folder above it, each 0700; an error names the folder and the errno's text.
    package static func makeFolders(_ path: String) throws(RepositoryError) {
        try storeStep { () throws(StoreError) in try FolderStore.makeFolders(path) }
    }
}
