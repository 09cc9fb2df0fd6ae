import FileIO
import Foundation
import Storage

extension BackupRepository {
    /// Removes from `domain`'s folder what killed runs left (a staged point, a temporary object), as a backup does
    /// before writing; the caller holds the domain's lock.
    public func removeLeftovers(of domain: String, lock: borrowing DomainLock) throws(RepositoryError) {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        try Self.removePartials(of: domain, in: store)
    }

    /// Copies a point of another repository into this one under its own id, `id`: `manifest` is the point's
    /// manifest as committed there, which this repository must accept for `id` and `domain` (it is validated as
    /// ``points(of:)`` validates it), and whose parent, if any, must be a committed point here already: a chain is
    /// never left without its base. `body` writes the point's other objects (``IncomingPoint``); the manifest is
    /// written last and the group published (see ``Storage/ObjectStore``) only if `body` returns. If anything
    /// throws, what was written is removed and the error rethrown, and nothing is listed. A prefix `<id>` without a
    /// manifest (a group a killed run wrote in place) is removed first; a committed point `id` is
    /// ``RepositoryError/Code/alreadyARepository``... never replaced. The caller holds the domain's lock.
    public func withCopiedPoint(
        _ id: String, of domain: String, manifest: [UInt8], lock: borrowing DomainLock,
        _ body: (IncomingPoint) async throws -> Void
    ) async throws -> BackupPoint {
        precondition(lock.folder == folder(of: domain), "the lock must be the domain's")
        let store = self.store
        let pointKey = try storeStep { () throws(StoreError) in try RepositoryLayout.point(id, of: domain) }
        let manifestKey = try storeStep { () throws(StoreError) in try pointKey.appending(RepositoryLayout.manifestName)
        }
        let decoded = try BackupManifest.decodeValid(
            Data(manifest), from: store.location(of: manifestKey), id: id, domain: domain)
        let incoming = try await BlockingWork.run { () throws(RepositoryError) -> IncomingPoint in
            try self.checkFree(id, of: domain, parent: decoded.parent)
            let written = try storeStep { () throws(StoreError) in
                try store.beginGroup(pointKey, stagingAt: RepositoryLayout.staging(id, of: domain))
            }
            return IncomingPoint(id: id, key: written, store: store)
        }
        do {
            try await body(incoming)
            try await BlockingWork.run { () throws(RepositoryError) in
                try storeStep { () throws(StoreError) in
                    try store.write(manifest, to: incoming.key.appending(RepositoryLayout.manifestName))
                    // The point exists from here on.
                    try store.publish(incoming.key, as: pointKey, replacing: false)
                }
            }
            return BackupPoint(id: id, manifest: decoded, key: pointKey, in: store)
        } catch {
            // In a task of its own: a cancelled run (SIGINT) must still remove what it wrote.
            let written = incoming.key
            await Task {
                _ = try? await BlockingWork.run { () throws(RepositoryError) in
                    try storeStep { () throws(StoreError) in try store.deleteTree(written) }
                }
            }.value
            throw error
        }
    }

    /// Throws unless point `id` of `domain` can be made here: no committed point by that id, and `parent` (when
    /// set) committed. Only the manifests' keys are looked at, not every point's manifest read: a sync of many points
    /// into a bucket makes one request per check. What a killed copy left under the point's own key (a group written
    /// in place, without its manifest) is removed.
    private func checkFree(_ id: String, of domain: String, parent: String?) throws(RepositoryError) {
        let (committed, parentCommitted) = try storeStep { () throws(StoreError) -> (Bool, Bool) in
            let manifest = RepositoryLayout.manifestName
            let committed = try store.kind(of: RepositoryLayout.file(manifest, of: id, in: domain)) != nil
            guard let parent else { return (committed, true) }
            return (committed, try store.kind(of: RepositoryLayout.file(manifest, of: parent, in: domain)) == .object)
        }
        if committed {
            throw RepositoryError(.io, "\(folder(of: domain))/\(id) is a committed point already")
        }
        if let parent, !parentCommitted {
            throw RepositoryError(
                .notFound,
                "point \(id) of \(domain) is based on \(parent), which \(root) does not have; a point is copied only after its parent"
            )
        }
        try storeStep { () throws(StoreError) in
            let key = try RepositoryLayout.point(id, of: domain)
            if try store.kind(of: key) != nil { try store.deleteTree(key) }
        }
    }
}
