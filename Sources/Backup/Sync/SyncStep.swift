import Repository
import Storage

/// Syncing's error mapping: how the failures of the layers it calls become its ``BackupError``s. Each use case has
/// its own, so that one can word or classify its failures differently without touching another's.
enum SyncStep {
    /// `body`'s result, or its repository error as a ``BackupError``.
    static func repository<T>(_ body: () throws(RepositoryError) -> T) throws(BackupError) -> T {
        do { return try body() } catch { throw BackupError(error) }
    }

    /// Throws unless `repository`, given as `option` (`--from`, `--to`), is a repository: one line naming the option,
    /// as the repository's own message names `--repo`.
    static func requireRepository(_ repository: BackupRepository, as option: String, hint: String)
        throws(BackupError)
    {
        do throws(RepositoryError) {
            try repository.requireRepository()
        } catch  where error.code == .notARepository {
            throw BackupError(
                .repository, "\(option) \(repository.root) is not a Pullback repository; \(hint)", cause: error)
        } catch {
            throw BackupError(error)
        }
    }

    /// The target domain's lock, or a one-line error naming the process that holds it.
    static func lock(_ domain: String, in target: BackupRepository) throws(BackupError) -> DomainLock {
        do throws(RepositoryError) {
            return try target.lock(domain)
        } catch  where error.code == .locked {
            let holder = (error.cause as? StoreError)?.lockOwner ?? "unknown"
            throw BackupError(
                .repository,
                "\(target.folder(of: domain)) is locked by process \(holder) (a backup, prune or sync of \(domain) into that repository); wait for it to finish",
                cause: error)
        } catch {
            throw BackupError(error)
        }
    }
}
