import FileIO
import Storage

/// How a store that cannot rename (a bucket) replaces a point by a rewritten one (see
/// ``BackupRepository/rewrite(_:of:lock:_:)``): the new point is written whole, its manifest last, under the staging
/// prefix `<domain>/<id>.rewrite.copy.partial/`, which no reader lists; then its objects are copied over the live
/// point's, each replaced in one step (``Storage/ObjectStore/copy(_:replacing:)``), the images and block hashes
/// first and the manifest last, and the live point's objects that the new point does not have are deleted; last, the
/// staged manifest is deleted, then the rest of the staging prefix.
///
/// Whenever the process is killed, every listed point still restores or is refused, never read wrong: a child reads
/// the same virtual disk through the old image or the new one, and a new, standalone image under the old manifest
/// (which names a backing file) is refused by the chain check. A staging prefix that has its manifest is complete,
/// so the next run under the domain's lock installs it again (each copy is idempotent) and deletes it
/// (``rollForwardStagedRewrites(of:in:)``); one without its manifest was never installed, and is deleted as any
/// leftover.
extension BackupRepository {
    /// Installs the rewrites of `domain` that a killed prune staged whole but did not install to the end (see the
    /// type's description), so that the points the caller lists next are what they will stay: a backup lists its
    /// base after this. Under the domain's lock; a folder has none (one list of the domain).
    public func finishStagedRewrites(of domain: String, lock: borrowing DomainLock) async throws(RepositoryError) {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        try RepositoryNames.checkRequested(domain, as: "domain")
        let store = self.store
        try await BlockingWork.run { () throws(RepositoryError) in
            try storeStep { () throws(StoreError) in
                try Self.rollForwardStagedRewrites(of: RepositoryLayout.domain(domain), in: store)
            }
        }
    }

    /// The suffix of the prefix a store that writes in place stages a rewritten point under, to be installed by
    /// copies. It ends in `.partial`: never listed as a point, and deleted as a leftover once installed or when
    /// incomplete.
    static let rewriteByCopySuffix = ".rewrite.copy.partial"

    /// Installs the complete point staged at `staged` over the point `pointKey` (see the type's description), then
    /// deletes the staging prefix. Idempotent: a run killed anywhere in it is finished by running it again.
    static func install(_ staged: ObjectKey, over pointKey: ObjectKey, in store: any ObjectStore) throws(StoreError) {
        let manifest = RepositoryLayout.manifestName
        let stagedNames = try store.list(under: staged).filter { $0.kind == .object }.map(\.name)
        for name in stagedNames where name != manifest {
            try store.copy(staged.appending(name), replacing: pointKey.appending(name))
        }
        try store.copy(staged.appending(manifest), replacing: pointKey.appending(manifest))
        // The new manifest names none of these (an image or block hashes the old point had and the new one not).
        let kept = Set(stagedNames)
        for entry in try store.list(under: pointKey) where entry.kind == .object && !kept.contains(entry.name) {
            try store.delete(pointKey.appending(entry.name))
        }
        try discardStaged(staged, in: store)
    }

    /// Deletes the staged point `staged`, its manifest first: a staging prefix is installed again only while it is
    /// whole, so one half deleted must not look complete.
    static func discardStaged(_ staged: ObjectKey, in store: any ObjectStore) throws(StoreError) {
        try store.delete(staged.appending(RepositoryLayout.manifestName))
        try store.deleteTree(staged)
    }

    /// Finishes the rewrites killed runs staged to be installed by copies in `domainKey` (the domain's prefix) but
    /// did not install to the end: each staged point that has its manifest, and whose live point is still there, is
    /// installed (``install(_:over:in:)``). Incomplete ones are left to be deleted as leftovers. Under the domain's
    /// lock.
    static func rollForwardStagedRewrites(of domainKey: ObjectKey, in store: any ObjectStore) throws(StoreError) {
        for entry in try store.list(under: domainKey)
        where entry.kind == .prefix && entry.name.hasSuffix(rewriteByCopySuffix) {
            let id = String(entry.name.dropLast(rewriteByCopySuffix.count))
            guard RepositoryNames.isValid(id) else { continue }
            let staged = try domainKey.appending(entry.name)
            let pointKey = try domainKey.appending(id)
            guard try store.kind(of: staged.appending(RepositoryLayout.manifestName)) == .object,
                try store.kind(of: pointKey.appending(RepositoryLayout.manifestName)) == .object
            else { continue }
            try install(staged, over: pointKey, in: store)
        }
    }
}
