import Repository

/// The digests of several images at once, each read on the I/O thread pool (``ImageDigest/of(_:)``).
enum ImageDigests {
    /// The ``ImageDigest`` of each file in `paths`, in the same order.
    static func of(_ paths: [String]) async throws(BackupError) -> [String] {
        do {
            return try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (index, path) in paths.enumerated() {
                    group.addTask { (index, try await ImageDigest.of(path)) }
                }
                var digests = [String](repeating: "", count: paths.count)
                for try await (index, digest) in group { digests[index] = digest }
                return digests
            }
        } catch let error as RepositoryError where error.code == .cancelled {
            throw BackupError(.interrupted, "interrupted while reading images for their digests")
        } catch let error as RepositoryError {
            throw BackupError(.repository, error.message, cause: error)
        } catch {
            throw BackupError(.interrupted, "interrupted while reading images for their digests")
        }
    }
}
