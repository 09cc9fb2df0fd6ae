import Engine
import FileIO
import Foundation
import QCOW2
import Repository
import Storage
import SystemPackage

/// `pullback verify`: every image a point needs (its own and its parents' down to the full point) is read again and
/// compared with the digest its manifest recorded when it was committed; with `--content`, each disk's chain is also
/// read as a restore reads it and its content digest compared with the point's (``PointDigest``).
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
            /// Something else has the image's name (a symbolic link, a FIFO, a device, a folder), or reading it
            /// failed: see `problem`.
            case unreadable
        }

        /// The domain whose point the image belongs to.
        public var domain: String
        public var point: String
        public var target: String
        public var path: String
        public var status: Status
        public var recorded: String?
        public var actual: String?
        /// Why the image is ``Status-swift.enum/unreadable``.
        public var problem: String?

        /// Whether this is a state file of the point (NVRAM, TPM; `target` is its kind), not a disk's image: every
        /// image a manifest may name is `<target>.qcow2`, and no state file's name ends so.
        public var isStateFile: Bool { !path.hasSuffix(".qcow2") }
    }

    /// The checks of one point's chain, newest point first.
    public struct Report: Sendable, Codable {
        public var domain: String
        public var point: String
        public var images: [ImageCheck]
        /// With `--content`: the content digest of each of the point's disks; nil (absent from JSON) without it, and
        /// empty when an image of the chain failed, as the chain is then not read.
        public var contents: [PointDigest.DiskCheck]?

        /// The images that are damaged, gone or unreadable.
        public var failures: [ImageCheck] { images.filter(\.isFailure) }
        /// The disks whose chain reads other bytes than the point recorded, or could not be read.
        public var contentFailures: [PointDigest.DiskCheck] { (contents ?? []).filter(\.isFailure) }
    }

    /// Checks point `id` (or `latest`) of `domain` in the repository at `root`, and the points it is based on, and the
    /// point's state files (reported as images whose target is their kind, `nvram` or `tpm`).
    /// Throws when the point or a parent is not in the repository; damaged images are in the report. `progress`,
    /// when given, counts the bytes read, one part per image (named `<point> <target>`).
    ///
    /// The images read are exactly those of each disk's ``PointChain``: a manifest cannot make verify read a file
    /// outside the repository. An image that is a symbolic link, a FIFO, a device or a folder is an error, not read.
    /// When every digest matches, each disk's chain is also opened as a restore opens it, so that an image whose
    /// header names another backing file than the manifests say fails verify too. With `content`, each disk's chain is then
    /// read and its content digest compared with the one the point recorded (a point without one is reported so).
    public static func verify(
        repository root: String, domain: String, at id: String, content: Bool = false, progress: JobProgress? = nil
    ) async throws(BackupError) -> Report {
        let repository = BackupRepository(root: root)
        let top = try VerifyStep.repository { () throws(RepositoryError) in try repository.point(id, of: domain) }
        let points = try VerifyStep.repository { () throws(RepositoryError) in try repository.points(of: domain) }
        let chains = try chains(of: top, among: points, domain: domain, in: repository)
        // The point's state files (NVRAM, TPM) are its own, whole: checked as images are, named by their kind.
        let state = try VerifyStep.repository { () throws(RepositoryError) in try top.stateLayers() }
        let images = try await check(
            imagesByPoint(chains).map { (domain, $0.target, $0.image) }
                + state.map { (domain, $0.kind.rawValue, $0.layer) }, progress: progress)
        var report = Report(domain: domain, point: top.id, images: images)
        if report.failures.isEmpty {
            try await checkHeaders(chains)
        }
        if content {
            report.contents =
                report.failures.isEmpty
                ? try await PointDigest.check(chains, of: top, domain: domain, progress: progress, namingDomain: false)
                : []
        }
        return report
    }

    /// Reads each image of `entries` (the digest of each that has one recorded) and compares it with the record;
    /// progress parts are named `<point> <target>`, or `<domain> <point> <target>` with `namingDomains`. An image that
    /// cannot be read is reported as such, and the others are still read; only an interruption throws. Images for
    /// which `readLater` says yes are only looked for (a restore checks them as it reads them).
    static func check(
        _ entries: [(domain: String, target: String, image: PointChain.Image)], progress: JobProgress?,
        namingDomains: Bool = false, readLater: (PointChain.Image) -> Bool = { _ in false },
        limiter: ByteRateLimiter? = nil
    ) async throws(BackupError) -> [ImageCheck] {
        var images: [ImageCheck] = []
        var toRead: [(index: Int, name: String, image: PointChain.Image)] = []
        for (domain, target, image) in entries {
            var check = ImageCheck(
                domain: domain, point: image.point, target: target, path: image.path, status: .ok,
                recorded: image.recordedDigest, actual: nil)
            let readable: Bool
            do throws(BackupError) { readable = try isReadable(image) } catch {
                check.status = .unreadable
                check.problem = error.message
                images.append(check)
                continue
            }
            if !readable {
                check.status = .missing
            } else if image.recordedDigest == nil {
                check.status = .unrecorded
            } else if !readLater(image) {
                let name = (namingDomains ? domain + " " : "") + "\(image.point) \(target)"
                toRead.append((images.count, name, image))
            }
            images.append(check)
        }
        let digests = try await ImageDigests.each(
            toRead.map {
                (name: $0.name, path: $0.image.path, like: images[$0.index].recorded, object: $0.image.object)
            },
            progress: progress, limiter: limiter)
        for (entry, digest) in zip(toRead, digests) {
            switch digest {
            case .success(let digest):
                images[entry.index].actual = digest
                if digest != images[entry.index].recorded { images[entry.index].status = .mismatch }
            case .failure(let error):
                images[entry.index].status = .unreadable
                images[entry.index].problem = error.message
            }
        }
        return images
    }

    /// Each disk's chain at `top`, one of `points` (the domain's committed points), in the order of its manifest.
    static func chains(
        of top: BackupPoint, among points: [BackupPoint], domain: String, in repository: BackupRepository
    ) throws(BackupError) -> [PointChain] {
        var chains: [PointChain] = []
        for disk in top.manifest.disks {
            chains.append(
                try PointChain.of(
                    disk.target, at: top, among: points, domain: domain, in: repository))
        }
        return chains
    }

    /// The images of all chains, each once, the newest point's first: the `n`th image of every chain belongs to the
    /// `n`th point down from the top, as every chain follows the same parents.
    static func imagesByPoint(_ chains: [PointChain]) -> [(target: String, image: PointChain.Image)] {
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
    private static func isReadable(_ image: PointChain.Image) throws(BackupError) -> Bool {
        let path = image.path
        if let object = image.object {
            do throws(StoreError) { return try object.store.kind(of: object.key) == .object } catch {
                throw BackupError(.repository, "cannot read \(path): \(error.message)", cause: error)
            }
        }
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
    static func checkHeaders(_ chains: [PointChain]) async throws(BackupError) {
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

extension PointVerification.ImageCheck {
    /// Whether the image is damaged, gone or unreadable.
    public var isFailure: Bool { [.mismatch, .missing, .unreadable].contains(status) }
}
