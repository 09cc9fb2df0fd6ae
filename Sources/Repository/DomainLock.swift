import Foundation
import Storage

/// An exclusive lock on one domain's folder in a repository, so that two backups (or prunes) of the same domain
/// never write into it at once: the store's lock `<domain>/.lock` (``Storage/ObjectStore/acquireLock(_:owner:expiry:)``),
/// owned by this process's id. In a folder it is an `flock`, released when the owner ends or when the process dies,
/// so a crashed run never leaves the domain locked.
public struct DomainLock: ~Copyable {
    /// How long a store whose locks outlive their process keeps a lock before another run may take it over: longer
    /// than any backup.
    static let expiry = Duration.seconds(7 * 86_400)

    private let lock: any ObjectLock
    /// The domain folder the lock protects.
    public let folder: String

    /// Takes the lock of `domain` in `repository`, making the domain's folder when it is not there, or fails at once
    /// with `.locked` naming the process that holds it.
    init(domain: String, in repository: BackupRepository) throws(RepositoryError) {
        let store = repository.store
        let owner = "\(ProcessInfo.processInfo.processIdentifier)"
        do throws(StoreError) {
            lock = try store.acquireLock(RepositoryLayout.lock(of: domain), owner: owner, expiry: Self.expiry)
        } catch  where error.code == .locked {
            throw RepositoryError(
                .locked,
                "another backup or prune of this domain in \(repository.folder(of: domain)) is running (process \(error.lockOwner ?? "unknown")); wait for it to finish",
                cause: error)
        } catch {
            throw RepositoryError(error)
        }
        folder = repository.folder(of: domain)
    }

    deinit {
        lock.release()
    }
}
