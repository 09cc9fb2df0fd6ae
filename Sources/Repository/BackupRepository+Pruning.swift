import FileIO
import Foundation
import Storage

/// The steps of `prune` in the store, each of which leaves every listed point restorable and verifiable, whenever
/// the process is killed:
///
/// 1. **Rewrite** an incremental point as a synthetic full (``rewrite(_:of:lock:_:)``). The new images, manifest and
///    saved XML are written as a group staged at `<domain>/<id>.rewrite.partial/` (never listed) and published
///    replacing the point (``Storage/ObjectStore/publish(_:as:replacing:)``): in a folder, that folder and the
///    point's folder swap names in one atomic `renameat2(RENAME_EXCHANGE)`, and the domain folder is flushed. Before
///    the swap the point is its old self, after it the new one: manifest and images change together, and a child's
///    backing file `../<id>/<target>.qcow2` names the same disk content either way. The old folder, now under the
///    `.partial` name, is removed afterwards.
///    A bucket cannot swap: it stages the new point at `<domain>/<id>.rewrite.copy.partial/` and installs it by
///    replacing the point's objects one by one, manifest last (see `BackupRepository+Installing.swift`).
/// 2. **Remove** a point (``remove(_:of:lock:)``) once no listed point is based on it: it is withdrawn
///    (``Storage/ObjectStore/withdraw(_:to:commit:)``: in a folder, renamed to `<domain>/<id>.removed.partial`, gone
///    from the listing in one step, the domain folder flushed), then emptied.
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
    /// Every suffix of a staged point's folder, longest first, so that the first that matches is the whole suffix.
    static let stagingSuffixes = [rewriteByCopySuffix, rewriteSuffix, removalSuffix, RepositoryLayout.partialSuffix]
    /// The files a point keeps beside its manifest and images, carried over by a rewrite.
    static let savedFiles = ["domain.xml", "checkpoint.xml"]

    /// Removes what killed runs left in `domain`'s folder: backups' `.partial` folders and a prune's staged rewrites
    /// and half-removed points. Under the lock, so none of them belongs to a run still alive. On the I/O thread pool:
    /// a tree may hold thousands of files.
    public func discardUnfinishedWork(of domain: String, lock: borrowing DomainLock) async throws(RepositoryError) {
        try RepositoryNames.checkRequested(domain, as: "domain")
        let store = self.store
        try await BlockingWork.run { () throws(RepositoryError) in try Self.removePartials(of: domain, in: store) }
    }

    /// Replaces `point` with the point `body` writes (see the type's description): `body` fills the staged point
    /// with every disk's image (`imageTarget`, `imagePath(for:)`) and returns the new manifest; the point's saved XML
    /// and its state files (NVRAM, TPM) are carried over. If `body` throws, the staged point is removed and the point
    /// is left as it was. Returns the new point. A folder swaps the new point in atomically
    /// (``RepositoryError/Code/io`` where its file system cannot); a bucket installs it object by object, which a
    /// killed run's successor finishes.
    public func rewrite(
        _ point: BackupPoint, of domain: String, lock: borrowing DomainLock,
        _ body: (PendingPoint) async throws -> BackupManifest
    ) async throws -> BackupPoint {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        let store = self.store
        let (domainKey, pointKey, stagingKey, copyStagingKey) = try storeStep { () throws(StoreError) in
            (
                try RepositoryLayout.domain(domain),
                try RepositoryLayout.point(point.id, of: domain),
                try RepositoryLayout.staging(point.id, of: domain, suffix: Self.rewriteSuffix),
                try RepositoryLayout.staging(point.id, of: domain, suffix: Self.rewriteByCopySuffix)
            )
        }
        let staging = try await BlockingWork.run { () throws(RepositoryError) -> PendingPoint in
            let written = try storeStep { () throws(StoreError) in
                try Self.beginRewrite(
                    of: pointKey, in: domainKey, staging: stagingKey, copyStaging: copyStagingKey, store: store)
            }
            let staging = PendingPoint(id: point.id, domain: domain, key: written, store: store)
            try Self.carryOver(point, into: staging)
            return staging
        }
        let installedByCopies = store.writesGroupsInPlace
        let manifest: BackupManifest
        do {
            manifest = try await body(staging)
            let manifestKey = try storeStep { () throws(StoreError) in
                try staging.key.appending(RepositoryLayout.manifestName)
            }
            try manifest.validate(id: point.id, domain: domain, file: store.location(of: manifestKey))
            let bytes = Array(try BackupManifest.encoder.encode(manifest))
            try await BlockingWork.run { () throws(RepositoryError) in
                try storeStep { () throws(StoreError) in try store.write(bytes, to: manifestKey) }
                try Self.requirePoint(pointKey, of: domain, in: store)
                guard !installedByCopies else { return }
                try Self.publishReplacing(staging.key, as: pointKey, in: store)
                // The old point, now under the staging name: the next prune or backup removes what is left.
                try? store.deleteTree(staging.key)
            }
        } catch {
            // In a task of its own: a cancelled prune (SIGINT) must still remove its staging folder.
            let written = staging.key
            await Task {
                _ = try? await BlockingWork.run { () throws(RepositoryError) in
                    try storeStep { () throws(StoreError) in try Self.discardStaged(written, in: store) }
                }
            }.value
            throw error
        }
        if installedByCopies {
            // Whole from its manifest on: never deleted here, the next run under the lock installs it if this fails.
            try await BlockingWork.run { () throws(RepositoryError) in
                try storeStep { () throws(StoreError) in try Self.install(staging.key, over: pointKey, in: store) }
            }
        }
        return BackupPoint(id: point.id, manifest: manifest, key: pointKey, in: store)
    }

    /// Writes into `staging` what a rewrite of `point` keeps as it is: its saved XML, and its state files (the
    /// domain's own at that point, whole), once checked.
    private static func carryOver(_ point: BackupPoint, into staging: PendingPoint) throws(RepositoryError) {
        for name in savedFiles {
            if let text = try point.savedFile(name) { try staging.write(text, to: name) }
        }
        for entry in point.manifest.state ?? [] {
            try staging.writeFile(try point.stateBytes(entry), to: entry.file)
        }
    }

    /// Begins the rewrite of the point `pointKey` of the domain `domainKey` and returns the prefix the new point is
    /// written under: `staging` in a store that stages (swapped in whole), `copyStaging` in one that writes groups
    /// in place (a bucket), which would otherwise write over the live point (installed by copies). What a killed
    /// rewrite left is installed when whole, deleted when not.
    private static func beginRewrite(
        of pointKey: ObjectKey, in domainKey: ObjectKey, staging: ObjectKey, copyStaging: ObjectKey,
        store: any ObjectStore
    ) throws(StoreError) -> ObjectKey {
        try rollForwardStagedRewrites(of: domainKey, in: store)
        try store.deleteTree(staging)
        try discardStaged(copyStaging, in: store)
        guard store.writesGroupsInPlace else { return try store.beginGroup(pointKey, stagingAt: staging) }
        return try store.beginGroup(copyStaging, stagingAt: copyStaging)
    }

    /// Publishes the rewritten point staged at `written` in place of `pointKey`: the swap is the commit.
    private static func publishReplacing(_ written: ObjectKey, as pointKey: ObjectKey, in store: any ObjectStore)
        throws(RepositoryError)
    {
        do throws(StoreError) {
            try store.publish(written, as: pointKey, replacing: true)
        } catch  where error.code == .unsupported {
            throw RepositoryError(
                .io,
                "\(error.message), which rewriting point \(pointKey.name) as a full one needs; keep more points, so that the oldest kept one is full",
                cause: error.cause ?? error)
        } catch {
            throw RepositoryError(error)
        }
    }

    /// Throws unless the point `pointKey` of `domain` is still there (a prefix, not a symbolic link to one).
    private static func requirePoint(_ pointKey: ObjectKey, of domain: String, in store: any ObjectStore)
        throws(RepositoryError)
    {
        switch try storeStep({ () throws(StoreError) in try store.kind(of: pointKey) }) {
        case .prefix:
            return
        case .symbolicLink:
            throw RepositoryError(
                .corrupt,
                "\(store.location(of: pointKey)) is a symbolic link; a repository's folders must be its own, not links to elsewhere"
            )
        default:
            throw RepositoryError(.notFound, "point \(pointKey.name) of \(domain) vanished during the prune")
        }
    }

    /// Removes `point` from the repository: gone from the listing in one step, then emptied (see the type's
    /// description). The caller makes sure that no listed point is based on it.
    public func remove(_ point: BackupPoint, of domain: String, lock: borrowing DomainLock)
        async throws(RepositoryError)
    {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        try RepositoryNames.checkRequested(point.id, as: "point")
        let store = self.store
        try await BlockingWork.run { () throws(RepositoryError) in
            let (pointKey, removedKey) = try storeStep { () throws(StoreError) in
                (
                    try RepositoryLayout.point(point.id, of: domain),
                    try RepositoryLayout.staging(point.id, of: domain, suffix: Self.removalSuffix)
                )
            }
            try Self.requirePoint(pointKey, of: domain, in: store)
            try storeStep { () throws(StoreError) in
                try store.deleteTree(removedKey)
                let left = try store.withdraw(pointKey, to: removedKey, commit: RepositoryLayout.manifestName)
                try store.deleteTree(left)
            }
        }
    }

    /// The bytes the files of `point` take in the store (in a folder: allocated blocks, not apparent sizes); symbolic
    /// links, FIFOs and devices count nothing, and so does a point that cannot be listed. Saturates rather than traps.
    public func allocatedBytes(of point: BackupPoint) -> UInt64 {
        guard let pointKey = try? RepositoryLayout.point(point.id, of: point.manifest.domainName),
            let entries = try? store.list(under: pointKey)
        else { return 0 }
        return entries.reduce(0) { total, entry in
            guard entry.kind == .object, let key = try? pointKey.appending(entry.name) else { return total }
            let (sum, overflow) = total.addingReportingOverflow(store.storedBytes(of: key))
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
}
