import Sealing
import Storage

/// The one rulebook of names in a repository: where each thing is, as keys of the repository's store. A folder
/// store keeps exactly the layout of the design's contract (`<domain>/<id>/manifest.json`, `<id>.partial/`...), so
/// that a repository written by an earlier version reads unchanged.
enum RepositoryLayout {
    /// The repository's identity, at the root.
    static let identityName = "repository.json"
    /// A point's commit object, written last.
    static let manifestName = "manifest.json"
    /// The suffix of every staging folder: never listed as a point, removed under the lock as a leftover.
    static let partialSuffix = ".partial"
    /// Whether the entry `name` of a domain's folder is what a killed run left: a staging folder (`.partial`), or a
    /// folder store's temporary file (`.<name>.<random>.tmp`) of an object it was writing.
    static func isLeftover(_ name: String) -> Bool {
        name.hasSuffix(partialSuffix) || (name.hasPrefix(".") && name.hasSuffix(".tmp"))
    }

    /// The lock of a domain, in its folder.
    static let lockName = ".lock"

    /// The key of the object or prefix made of `components`, each a name ``RepositoryNames`` accepted (or a
    /// name derived from one).
    static func key(_ components: String...) throws(StoreError) -> ObjectKey {
        try ObjectKey(components: components)
    }

    static func identity() throws(StoreError) -> ObjectKey { try key(identityName) }

    static func domain(_ domain: String) throws(StoreError) -> ObjectKey { try key(domain) }

    static func point(_ id: String, of domain: String) throws(StoreError) -> ObjectKey { try key(domain, id) }

    static func file(_ name: String, of id: String, in domain: String) throws(StoreError) -> ObjectKey {
        try key(domain, id, name)
    }

    /// Where a point being written (or rewritten, or removed) is staged by a store that stages: `<id><suffix>`.
    static func staging(_ id: String, of domain: String, suffix: String = partialSuffix) throws(StoreError)
        -> ObjectKey
    {
        try key(domain, id + suffix)
    }

    static func lock(of domain: String) throws(StoreError) -> ObjectKey { try key(domain, lockName) }

    static func jobRecord(_ id: String, of domain: String) throws(StoreError) -> ObjectKey {
        try key(domain, JobRecord.filePrefix + id + JobRecord.fileSuffix)
    }

    /// The image file of disk `target` in a point: `<target>.qcow2`.
    static func imageName(for target: String) -> String { target + ".qcow2" }

    /// The block hashes file of disk `target` in a point: `<target>.blocks`.
    static func blockHashesName(for target: String) -> String { target + ".blocks" }

    /// The backing file name an incremental point's image of disk `target` records: its parent point's image,
    /// relative, so that a repository can be moved: `../<parent>/<target>.qcow2`.
    static func backingName(parent: String, target: String) -> String {
        "../" + parent + "/" + imageName(for: target)
    }
}

extension RepositoryError {
    /// A store's failure as the repository's: a full store says what to do, a symbolic link or a thing of the
    /// wrong kind is a damaged repository, and the cause (an `Errno` for a file call) stays visible.
    init(_ error: StoreError) {
        // A store that stands for a repository it cannot open (no key, a wrong one) carries the repository's error.
        if let repositoryError = error.cause as? RepositoryError {
            self = repositoryError
            return
        }
        let cause = error.cause ?? error
        if cause is SealedObjectDamage {
            self.init(.corrupt, error.message, cause: cause)
            return
        }
        switch error.code {
        case .noSpace:
            self.init(.noSpace, error.message + "; free space or choose another repository", cause: cause)
        case .symbolicLink:
            self.init(
                .corrupt, error.message + "; pullback opens only the repository's own files and folders, never links",
                cause: cause)
        case .notAnObject:
            self.init(.corrupt, error.message + "; the repository is damaged", cause: cause)
        case .invalidKey:
            self.init(.invalidName, error.message, cause: cause)
        case .locked:
            self.init(.locked, error.message, cause: cause)
        default:
            self.init(.io, error.message, cause: cause)
        }
    }
}

/// Runs a store call and gives its failure as a ``RepositoryError``.
func storeStep<T>(_ body: () throws(StoreError) -> T) throws(RepositoryError) -> T {
    do throws(StoreError) { return try body() } catch { throw RepositoryError(error) }
}
