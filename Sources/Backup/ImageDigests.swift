import Engine
import Foundation
import Repository

/// The digests of several images at once, each read on the I/O thread pool (``ImageDigest/of(_:like:reading:)``).
enum ImageDigests {
    /// The ``ImageDigest`` of each file in `images`, in the same order, each in the form of its `like` (a whole
    /// file's when nil); with `progress`, each image is a part named `name`, whose total is the file's size.
    static func of(
        _ images: [(name: String, path: String, like: String?)], progress: JobProgress? = nil
    ) async throws(BackupError)
        -> [String]
    {
        progress?.expect(parts: images.count)
        do {
            return try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (index, image) in images.enumerated() {
                    group.addTask {
                        let counters = progress?.start(image.name) ?? CopyProgress()
                        defer { progress?.finish(counters) }
                        counters.setTotal(fileSize(image.path))
                        let digest = try await ImageDigest.of(image.path, like: image.like) { bytes in
                            counters.addRead(UInt64(bytes))
                        }
                        return (index, digest)
                    }
                }
                var digests = [String](repeating: "", count: images.count)
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

    private static func fileSize(_ path: String) -> UInt64 {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return (attributes?[.size] as? NSNumber)?.uint64Value ?? 0
    }
}
