import Engine
import FileIO
import Foundation
import QCOW2
import Repository
import SystemPackage

/// `pullback verify`: every image a point needs (its own and its parents' down to the full point) is read again and
/// compared with the digest its manifest recorded when it was committed.
public enum PointVerification {
    /// What was found for one image.
    public struct ImageCheck: Sendable, Codable, Equatable {
        public enum Status: String, Sendable, Codable {
            /// The image reads as it was committed.
            case ok
            /// The image differs from what was committed: it was damaged or changed.
            case mismatch
            /// The image file is gone.
            case missing
            /// The point was made before digests were recorded; nothing to compare with.
            case unrecorded
        }

        public var point: String
        public var target: String
        public var path: String
        public var status: Status
        public var recorded: String?
        public var actual: String?
    }

    /// The checks of one point's chain, newest point first.
    public struct Report: Sendable, Codable {
        public var domain: String
        public var point: String
        public var images: [ImageCheck]

        /// The images that are damaged or gone.
        public var failures: [ImageCheck] { images.filter { $0.status == .mismatch || $0.status == .missing } }
    }

    /// Checks point `id` (or `latest`) of `domain` in the repository at `root`, and the points it is based on.
    /// Throws when the point or a parent is not in the repository; damaged images are in the report. `progress`,
    /// when given, counts the bytes read, one part per image (named `<point> <target>`).
    ///
    /// The images read are exactly those of each disk's ``PointChain``: a manifest cannot make verify read a file
    /// outside the repository. An image that is a symbolic link, a FIFO, a device or a folder is an error, not read.
    /// When every digest matches, each disk's chain is also opened as a restore opens it, so that an image whose
    /// header names another backing file than the manifests say fails verify too.
    public static func verify(
        repository root: String, domain: String, at id: String, progress: JobProgress? = nil
    ) async throws(BackupError) -> Report {
        let repository = BackupRepository(root: root)
        let top = try BackupRun.repositoryStep { () throws(RepositoryError) in try repository.point(id, of: domain) }
        let chains = try chains(of: top, domain: domain, in: repository)
        var images: [ImageCheck] = []
        var toRead: [(index: Int, name: String, path: String)] = []
        for (target, image) in imagesByPoint(chains) {
            var check = ImageCheck(
                point: image.point, target: target, path: image.path, status: .ok, recorded: image.recordedDigest,
                actual: nil)
            if try !isReadable(image.path) {
                check.status = .missing
            } else if image.recordedDigest == nil {
                check.status = .unrecorded
            } else {
                toRead.append((images.count, "\(image.point) \(target)", image.path))
            }
            images.append(check)
        }
        let digests = try await ImageDigests.of(
            toRead.map { (name: $0.name, path: $0.path, like: images[$0.index].recorded) }, progress: progress)
        for (entry, digest) in zip(toRead, digests) {
            images[entry.index].actual = digest
            if digest != images[entry.index].recorded { images[entry.index].status = .mismatch }
        }
        let report = Report(domain: domain, point: top.id, images: images)
        if report.failures.isEmpty {
            try await checkHeaders(chains)
        }
        return report
    }

    /// Each disk's chain at `top`, in the order of its manifest.
    static func chains(of top: BackupPoint, domain: String, in repository: BackupRepository)
        throws(BackupError) -> [PointChain]
    {
        let points = try BackupRun.repositoryStep { () throws(RepositoryError) in try repository.points(of: domain) }
        var chains: [PointChain] = []
        for disk in top.manifest.disks {
            chains.append(
                try PointChain.of(
                    disk.target, at: top, among: points, domain: domain, in: repository.folder(of: domain)))
        }
        return chains
    }

    /// The images of all chains, each once, the newest point's first: the `n`th image of every chain belongs to the
    /// `n`th point down from the top, as every chain follows the same parents.
    private static func imagesByPoint(_ chains: [PointChain]) -> [(target: String, image: PointChain.Image)] {
        var images: [(target: String, image: PointChain.Image)] = []
        let depth = chains.map(\.images.count).max() ?? 0
        for level in 0..<depth {
            for chain in chains where level < chain.images.count {
                let image = chain.images[level]
                guard !images.contains(where: { $0.image.path == image.path }) else { continue }
                images.append((chain.target, image))
            }
        }
        return images
    }

    /// Whether `path` is there to be read: false when nothing has that name; an error when it is not a regular file
    /// (a symbolic link, a FIFO, a device, a folder), which is never read.
    private static func isReadable(_ path: String) throws(BackupError) -> Bool {
        do throws(ImageFileRefusal) {
            let (descriptor, _) = try FileDescriptor.openChecked(
                path: path, followingSymlinks: false, allowingDevices: false)
            descriptor.closeAfterUse()
            return true
        } catch {
            if error.errno == .noSuchFileOrDirectory { return false }
            throw BackupError(.repository, error.message(for: path), cause: error.errno)
        }
    }

    /// Opens each chain as a restore does, on the I/O thread pool.
    private static func checkHeaders(_ chains: [PointChain]) async throws(BackupError) {
        for chain in chains {
            let layers = chain.expectedLayers
            do throws(QCOW2Error) {
                _ = try await BlockingWork.run { () throws(QCOW2Error) in try QCOW2Chain(exactly: layers) }
            } catch {
                throw BackupError(.repository, error.message, cause: error)
            }
        }
    }
}
