import Storage

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
    /// repository made by a build that left them 0755 and 0644 (``Storage/ObjectStore/makePrivate(_:depth:)``).
    /// Symbolic links, FIFOs and devices are left alone, never opened (a root that is a symbolic link keeps its
    /// target's mode); files of another user cannot be changed and are skipped. Under the domain's lock, as the first
    /// thing a backup does.
    public func tightenPermissions(of domain: String, lock: borrowing DomainLock) -> Tightened {
        let count = (try? RepositoryLayout.domain(domain)).map { store.makePrivate($0, depth: 1) } ?? 0
        return Tightened(folder: folder(of: domain), count: count)
    }
}
