import FileIO
import Foundation
import Storage

extension BackupRepository {
    /// Writes a new point of `domain` through `body`, which fills the pending point (its images, saved XML, block
    /// hashes) and returns the manifest. Stale `.partial` folders of killed runs are removed first; the caller holds
    /// the lock. The point is committed (manifest written last, then published: see ``Storage/ObjectStore``) only if
    /// `body` returns; if it throws, what was written is removed and the error rethrown.
    public func withNewPoint(
        of domain: String, lock: borrowing DomainLock, started: Date,
        _ body: (PendingPoint) async throws -> BackupManifest
    ) async throws -> BackupPoint {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        let store = self.store
        // Removing a killed run's images and flushing are slow, blocking calls: they run on the I/O pool.
        let pending = try await BlockingWork.run { () throws(RepositoryError) -> PendingPoint in
            try Self.removePartials(of: domain, in: store)
            let id = try Self.freshID(for: started, of: domain, in: store)
            let written = try storeStep { () throws(StoreError) in
                try store.beginGroup(
                    RepositoryLayout.point(id, of: domain), stagingAt: RepositoryLayout.staging(id, of: domain))
            }
            return PendingPoint(id: id, domain: domain, key: written, store: store)
        }
        do {
            let manifest = try await body(pending)
            let bytes = Array(try BackupManifest.encoder.encode(manifest))
            let pointKey = try storeStep { () throws(StoreError) in try RepositoryLayout.point(pending.id, of: domain) }
            try await BlockingWork.run { () throws(RepositoryError) in
                try storeStep { () throws(StoreError) in
                    try store.write(bytes, to: pending.key.appending(RepositoryLayout.manifestName))
                    // The point exists from here on.
                    try store.publish(pending.key, as: pointKey, replacing: false)
                }
            }
            return BackupPoint(id: pending.id, manifest: manifest, key: pointKey, in: store)
        } catch {
            // In a task of its own: a cancelled run (SIGINT) must still remove what it wrote.
            let written = pending.key
            await Task {
                _ = try? await BlockingWork.run { () throws(RepositoryError) in
                    try storeStep { () throws(StoreError) in try store.deleteTree(written) }
                }
            }.value
            throw error
        }
    }

    /// Removes every `.partial` entry of `domain`'s folder: a backup's pending point, a prune's staged rewrite or
    /// half-removed point (see ``rewrite(_:of:lock:_:)``), all of killed runs when the caller holds the lock; and the
    /// temporary file of a job record a killed run was writing. A rewrite a bucket staged whole (with its manifest)
    /// is first installed over its point, not deleted (``rollForwardStagedRewrites(of:in:)``). Each is
    /// removed through the store, which for a folder removes relative to descriptors (``FileIO/FileTree``): a writer
    /// racing the removal cannot steer it out of the repository, and a symbolic link loses only its name.
    static func removePartials(of domain: String, in store: any ObjectStore) throws(RepositoryError) {
        try storeStep { () throws(StoreError) in
            let domainKey = try RepositoryLayout.domain(domain)
            // Before the leftovers are deleted: a whole staged rewrite is installed, not lost.
            try rollForwardStagedRewrites(of: domainKey, in: store)
            for entry in try store.list(under: domainKey) where RepositoryLayout.isLeftover(entry.name) {
                try store.deleteTree(domainKey.appending(entry.name))
            }
            if store.writesGroupsInPlace { try removeUncommitted(of: domainKey, in: store) }
        }
    }

    /// A bucket writes a point in place and commits it by its manifest: what a killed run left is a point prefix
    /// without a manifest, and multipart uploads never completed. Both go, under the domain's lock.
    private static func removeUncommitted(of domainKey: ObjectKey, in bucket: any ObjectStore) throws(StoreError) {
        _ = try bucket.abortLeftoverUploads(under: domainKey)
        for entry in try bucket.list(under: domainKey)
        where entry.kind == .prefix && RepositoryNames.isValid(entry.name) {
            let pointKey = try domainKey.appending(entry.name)
            if try bucket.kind(of: pointKey.appending(RepositoryLayout.manifestName)) == nil {
                try bucket.deleteTree(pointKey)
            }
        }
    }

    /// The id for `date`, made unique among existing points (two points in one second get `-2`, `-3`...).
    private static func freshID(for date: Date, of domain: String, in store: any ObjectStore) throws(RepositoryError)
        -> String
    {
        let base = BackupPoint.id(for: date)
        var id = base
        var suffix = 2
        // Nor the id of a run whose job record is still there.
        while try storeStep({ () throws(StoreError) in
            // Not with `||`: its autoclosure would lose the error's type.
            let point = try store.kind(of: RepositoryLayout.point(id, of: domain))
            let record = try store.kind(of: RepositoryLayout.jobRecord(id, of: domain))
            return point != nil || record != nil
        }) {
            id = "\(base)-\(suffix)"
            suffix += 1
        }
        return id
    }
}
