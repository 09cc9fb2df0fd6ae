import Engine
import FileIO
import QCOW2
import Repository

extension PendingPoint {
    /// The copy target of disk `target`'s new image in this point, an overlay over `backing` or standalone, its
    /// clusters stored with `compression`: a file in the point's folder, or an object of the repository's store (a
    /// bucket) written as it is copied.
    func imageTarget(
        _ target: String, over backing: QCOW2FileTarget.Backing?, compression: ClusterCompression
    ) -> CopyTarget {
        var image = fileOrObject(target, over: backing)
        image.compression = compression
        return image
    }

    private func fileOrObject(_ target: String, over backing: QCOW2FileTarget.Backing?) -> CopyTarget {
        let path = imagePath(for: target)
        guard !imagesAreFiles else { return backing.map { .overlay(path, over: .opened($0)) } ?? .qcow2(path) }
        return .qcow2(
            into: { maximumSize throws(CopyError) in
                do throws(RepositoryError) {
                    guard let output = try self.imageOutput(for: target, maximumSize: maximumSize) else {
                        throw RepositoryError(.io, "\(path) became a file while the point was written")
                    }
                    return output
                } catch {
                    throw CopyError(.target, "cannot write \(path): \(error.message)", cause: error)
                }
            }, named: path, over: backing)
    }
}

extension QCOW2FileTarget.Backing {
    /// The image of disk `target` at `point` (a committed point of a repository whose images are objects) as the
    /// backing of a new overlay in the point after it: its chain opened through the store, the name the overlay
    /// records being the repository's `../<point>/<target>.qcow2`.
    static func repositoryImage(of target: String, at point: BackupPoint) async throws(CopyError)
        -> QCOW2FileTarget.Backing
    {
        let chain: PointChain
        do throws(BackupError) {
            let (repository, domain) = try PointChain.location(of: point)
            chain = try PointChain.of(target, at: point, domain: domain, in: repository)
        } catch {
            throw CopyError(
                .targetMismatch, "the previous point \(point.id) is not usable: \(error.message)", cause: error)
        }
        let layers = chain.expectedLayers
        let size = try await BlockingWork.run { () throws(CopyError) -> UInt64 in
            do throws(QCOW2Error) { return try QCOW2Chain(exactly: layers).size } catch {
                throw CopyError(
                    .targetMismatch, "the image of \(target) in point \(point.id) is not usable: \(error.message)",
                    cause: error)
            }
        }
        return QCOW2FileTarget.Backing(
            path: layers[0].path, storedName: BackupPoint.backingName(parent: point.id, target: target),
            virtualSize: size)
    }
}
