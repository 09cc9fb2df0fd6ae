import NIOPosix
import Repository

/// Image digests computed off Swift's cooperative pool: every file is read on a thread of the shared I/O pool,
/// all files at once.
enum ImageDigests {
    /// The ``ImageDigest`` of each file in `paths`, in the same order.
    static func of(_ paths: [String]) async throws(BackupError) -> [String] {
        do {
            return try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (index, path) in paths.enumerated() {
                    group.addTask {
                        let digest = try await NIOThreadPool.singleton.runIfActive { () throws -> String in
                            try ImageDigest.ofFile(path)
                        }
                        return (index, digest)
                    }
                }
                var digests = [String](repeating: "", count: paths.count)
                for try await (index, digest) in group { digests[index] = digest }
                return digests
            }
        } catch let error as RepositoryError {
            throw BackupError(.repository, error.message, cause: error)
        } catch is CancellationError {
            throw BackupError(.interrupted, "interrupted while reading images for their digests")
        } catch {
            throw BackupError(.repository, "cannot compute image digests: \(error)")
        }
    }
}
