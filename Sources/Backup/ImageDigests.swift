import NIOPosix
import Repository
import Synchronization

/// Image digests computed off Swift's cooperative pool: every file is read on a thread of the shared I/O pool,
/// all files at once.
enum ImageDigests {
    /// The ``ImageDigest`` of each file in `paths`, in the same order.
    static func of(_ paths: [String]) async throws(BackupError) -> [String] {
        do {
            return try await withThrowingTaskGroup(of: (Int, String).self) { group in
                // The reads run on pool threads, which task cancellation does not reach: a flag does.
                let cancelled = CancellationFlag()
                for (index, path) in paths.enumerated() {
                    group.addTask {
                        let digest = try await withTaskCancellationHandler {
                            try await NIOThreadPool.singleton.runIfActive { () throws -> String in
                                try ImageDigest.ofFile(path, isCancelled: { cancelled.isSet })
                            }
                        } onCancel: {
                            cancelled.set()
                        }
                        return (index, digest)
                    }
                }
                var digests = [String](repeating: "", count: paths.count)
                for try await (index, digest) in group { digests[index] = digest }
                return digests
            }
        } catch let error as RepositoryError where error.code == .cancelled {
            throw BackupError(.interrupted, "interrupted while reading images for their digests")
        } catch let error as RepositoryError {
            throw BackupError(.repository, error.message, cause: error)
        } catch is CancellationError {
            throw BackupError(.interrupted, "interrupted while reading images for their digests")
        } catch {
            throw BackupError(.repository, "cannot compute image digests: \(error)")
        }
    }
}

/// Set once, read from any thread.
private final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
