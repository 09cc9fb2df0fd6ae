import Engine
import Foundation
import Repository

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
    public static func verify(
        repository root: String, domain: String, at id: String, progress: JobProgress? = nil
    ) async throws(BackupError) -> Report {
        let repository = BackupRepository(root: root)
        let chain = try chainOfPoints(repository, domain: domain, at: id)
        var images: [ImageCheck] = []
        var toRead: [(index: Int, name: String, path: String)] = []
        for point in chain {
            for disk in point.manifest.disks {
                let path = point.folder + "/" + disk.image
                var check = ImageCheck(
                    point: point.id, target: disk.target, path: path, status: .ok, recorded: disk.imageDigest,
                    actual: nil)
                if !FileManager.default.fileExists(atPath: path) {
                    check.status = .missing
                } else if disk.imageDigest == nil {
                    check.status = .unrecorded
                } else {
                    toRead.append((images.count, "\(point.id) \(disk.target)", path))
                }
                images.append(check)
            }
        }
        let digests = try await ImageDigests.of(toRead.map { (name: $0.name, path: $0.path) }, progress: progress)
        for (entry, digest) in zip(toRead, digests) {
            images[entry.index].actual = digest
            if digest != images[entry.index].recorded { images[entry.index].status = .mismatch }
        }
        return Report(domain: domain, point: chain[0].id, images: images)
    }

    /// The point and its parents, newest first, down to a full point.
    static func chainOfPoints(_ repository: BackupRepository, domain: String, at id: String) throws(BackupError)
        -> [BackupPoint]
    {
        var chain = [
            try BackupRun.repositoryStep { () throws(RepositoryError) in try repository.point(id, of: domain) }
        ]
        while let parent = chain.last?.manifest.parent {
            guard chain.count <= 100_000, !chain.contains(where: { $0.id == parent }) else {
                throw BackupError(
                    .repository,
                    "the points of \(domain) name each other as parents (\(parent)); the repository is damaged")
            }
            do {
                chain.append(try repository.point(parent, of: domain))
            } catch {
                throw BackupError(
                    .repository,
                    "point \(chain.last!.id) of \(domain) is based on \(parent), which is not in the repository; restore it from another copy of the repository",
                    cause: error)
            }
        }
        return chain
    }
}
