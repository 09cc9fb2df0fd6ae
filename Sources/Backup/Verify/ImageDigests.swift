import Engine
import FileIO
import Repository
import SystemPackage

/// The digests of several images at once, each read on the I/O thread pool (``ImageDigest/of(_:like:reading:)``).
enum ImageDigests {
    /// The ``ImageDigest`` of each file in `images`, in the same order, each in the form of its `like` (a whole
    /// file's when nil); with `progress`, each image is a part named `name`, whose total is the file's size. The first
    /// image that cannot be read fails them all.
    static func of(
        _ images: [(name: String, path: String, like: String?, object: StoredObject?)], progress: JobProgress? = nil
    ) async throws(BackupError)
        -> [String]
    {
        var digests: [String] = []
        for result in try await each(images, progress: progress) {
            do throws(RepositoryError) { digests.append(try result.get()) } catch {
                throw BackupError(error)
            }
        }
        return digests
    }

    /// Like ``of(_:progress:)``, with the outcome of each image on its own: one that cannot be read (a read error, a
    /// FIFO by its name) does not stop the others. Throws only when interrupted. Reads wait for `limiter`.
    static func each(
        _ images: [(name: String, path: String, like: String?, object: StoredObject?)], progress: JobProgress? = nil,
        limiter: ByteRateLimiter? = nil
    ) async throws(BackupError) -> [Result<String, RepositoryError>] {
        progress?.expect(parts: images.count)
        let results = await withTaskGroup(of: (Int, Result<String, RepositoryError>).self) { group in
            for (index, image) in images.enumerated() {
                group.addTask {
                    let counters = progress?.start(image.name) ?? CopyProgress()
                    defer { progress?.finish(counters) }
                    counters.setTotal(image.object.map { $0.store.storedBytes(of: $0.key) } ?? fileSize(image.path))
                    do throws(RepositoryError) {
                        let layer = ImageLayer(point: "", path: image.path, object: image.object)
                        let digest = try await ImageDigest.of(layer, like: image.like) { bytes in
                            counters.addRead(UInt64(bytes))
                            // On the I/O pool's thread, which the read blocks anyway.
                            limiter?.waitBlocking(UInt64(bytes))
                        }
                        return (index, .success(digest))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results = [Result<String, RepositoryError>](
                repeating: .failure(RepositoryError(.cancelled, "not read")), count: images.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
        let interrupted = results.contains { result in
            if case .failure(let error) = result { error.code == .cancelled } else { false }
        }
        if interrupted || Task.isCancelled {
            throw BackupError(.interrupted, "interrupted while reading images for their digests")
        }
        return results
    }

    /// The size of the file at `path`, the total its progress counts up to; 0 when it cannot be looked at, since
    /// reading it then fails with the reason.
    private static func fileSize(_ path: String) -> UInt64 {
        let status = try? FileDescriptor.status(ofTarget: path)
        return status.map { UInt64(max(0, $0.size)) } ?? 0
    }
}
