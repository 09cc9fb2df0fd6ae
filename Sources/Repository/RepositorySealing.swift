import Sealing
import Storage
import Synchronization

/// Opens an encrypted repository's store: reads its `repository.json` (kept in the clear), finds the key file
/// (``RepositoryLocation/useKeyFile(_:for:)``), derives and checks the key, and gives the store whose objects are
/// sealed under it. A repository it cannot open (no key, a wrong one, a hostile description) becomes a store whose
/// every call fails with that reason, so that any command says it in one line before touching anything.
enum RepositorySealing {
    /// The key files given: one for every repository, and others for named ones (sync's `--to-key-file`).
    struct KeyFiles {
        var common: String?
        var byRoot: [String: String] = [:]
    }

    static let keyFiles = Mutex(KeyFiles())

    /// Keys derived in this process, by key file and key check: scrypt is slow on purpose, and a command opens its
    /// repository more than once.
    private static let derived = Mutex<[String: SealingKey]>([:])

    /// The store of the repository in `base` at `root`: `base` itself for a plain repository or for one not made
    /// yet, the sealed store for an encrypted one.
    static func store(over base: any ObjectStore, root: String) -> any ObjectStore {
        let identity: RepositoryIdentity?
        do {
            identity = try RepositoryIdentity.load(from: base)
        } catch  where error.code == .corrupt {
            return UnavailableStore(
                location: base.location(of: nil), error: StoreError(.io, error.message, cause: error))
        } catch {
            // What the store cannot tell now (a missing root, a failed read) the caller's first step says itself.
            return base
        }
        guard let identity, let encryption = identity.encryption else { return base }
        do throws(RepositoryError) {
            let key = try key(for: encryption, root: root, location: base.location(of: nil))
            return sealed(base, identity: identity, key: key)
        } catch {
            return UnavailableStore(
                location: base.location(of: nil), error: StoreError(.io, error.message, cause: error))
        }
    }

    /// `base` sealed under `key` for the repository `identity`: each object's logical name is the repository's id and
    /// its published key, so an object is bound to its place in its own repository. The repository's description and
    /// the domains' lock objects stay in the clear.
    static func sealed(_ base: any ObjectStore, identity: RepositoryIdentity, key: SealingKey) -> SealedStore {
        let id = identity.id
        return SealedStore(base, key: key) { objectKey in logicalName(of: objectKey, repositoryID: id) }
    }

    /// The name `key` is sealed under (nil: kept in the clear): `<repository id>/<domain>/<id>/<file>`, with a staged
    /// point's folder (`<id>.partial`, `<id>.rewrite.partial`, ...) named as the point it becomes, so that publishing
    /// by renaming or by copying keeps every object readable.
    static func logicalName(of key: ObjectKey, repositoryID: String) -> String? {
        var components = key.components
        if components == [RepositoryLayout.identityName] || components.last == RepositoryLayout.lockName { return nil }
        if components.count >= 3 {
            for suffix in BackupRepository.stagingSuffixes where components[1].hasSuffix(suffix) {
                components[1].removeLast(suffix.count)
                break
            }
        }
        return ([repositoryID] + components).joined(separator: "/")
    }

    /// The key file for the repository at `root`.
    static func keyFile(for root: String) -> String? {
        keyFiles.withLock { $0.byRoot[root] ?? $0.common }
    }

    /// The checked master key of the repository at `root` encrypted as `encryption` says.
    private static func key(for encryption: RepositoryEncryption, root: String, location: String)
        throws(RepositoryError)
        -> SealingKey
    {
        guard let keyFile = keyFile(for: root) else {
            throw RepositoryError(
                .keyRequired,
                "\(location) is an encrypted repository: give its key with --key-file FILE or PULLBACK_KEY_FILE=FILE")
        }
        let cacheKey = keyFile + "\0" + encryption.keyCheck
        if let known = derived.withLock({ $0[cacheKey] }) { return known }
        let material = try RepositoryKeyFile.read(keyFile)
        let key = try encryption.key(from: material, keyFile: keyFile, repository: location)
        derived.withLock { $0[cacheKey] = key }
        return key
    }
}

extension RepositoryLocation {
    /// Uses the key in `keyFile` (see ``RepositoryKeyFile``) to open encrypted repositories for the rest of the
    /// process: every repository's when `root` is nil, else only the repository given as `root` (sync's target).
    /// A plain repository ignores it.
    public static func useKeyFile(_ keyFile: String?, for root: String? = nil) {
        RepositorySealing.keyFiles.withLock {
            if let root { $0.byRoot[root] = keyFile } else { $0.common = keyFile }
        }
    }
}
