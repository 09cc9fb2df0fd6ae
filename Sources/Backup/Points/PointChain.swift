import FileIO
import Foundation
import QCOW2
import Repository
import SystemPackage
import UntrustedText

/// The images one disk of a backup point is read from: the point's own image, then its parent point's, down to a
/// standalone image, each with the backing file name its header must record.
///
/// Built from the repository's committed points and their manifests only, never from a name read out of an image:
/// every path is the repository's domain folder, a committed point's id and `<target>.qcow2`. A manifest's
/// `backingImage` must be exactly `../<parent>/<target>.qcow2`, with `<parent>` the manifest's `parent` and a
/// committed point of the same domain that has the disk; anything else is refused, whatever else checks names.
/// Opening the images with ``QCOW2/QCOW2Chain/init(exactly:)`` then checks that each header agrees.
public struct PointChain: Sendable, Equatable {
    /// One image of the chain.
    public struct Image: Sendable, Equatable {
        /// The id of the point the image belongs to.
        public var point: String
        /// The image's path: `<repository>/<domain>/<point>/<target>.qcow2`.
        public var path: String
        /// The backing file name the image must record (`../<parent>/<target>.qcow2`), nil for the base.
        public var backingName: String?
        /// The image's digest as the point's manifest recorded it, if it did.
        public var recordedDigest: String?
    }

    /// Longer chains are refused; it is also the most images a chain reader opens.
    public static let maximumDepth = QCOW2Chain.maximumLayers

    /// The disk's target, e.g. `vda`.
    public var target: String
    /// The images, the point's own first and the standalone base last.
    public var images: [Image]

    /// The chain as the images a reader must open, top first.
    public var expectedLayers: [QCOW2Chain.ExpectedLayer] {
        images.map { QCOW2Chain.ExpectedLayer(path: $0.path, backingName: $0.backingName) }
    }

    /// The chain of disk `target` at `point`, one of the committed points `points` of `domain`, whose folder in the
    /// repository is `domainFolder`. Reads no image; checks that the domain and point folders are folders, not
    /// symbolic links. Throws `.invalidRequest` when the point has no such disk, and `.repository` when a manifest
    /// names anything but what it may, a parent is missing, or the chain loops or is deeper than ``maximumDepth``.
    public static func of(
        _ target: String, at point: BackupPoint, among points: [BackupPoint], domain: String, in domainFolder: String
    ) throws(BackupError) -> PointChain {
        guard isSingleName(target) else {
            throw BackupError(.invalidRequest, "\(printable(target)) is not a disk target name")
        }
        try requireFolder(domainFolder)
        let imageName = target + ".qcow2"
        var images: [Image] = []
        var current = point
        // Keyed by the ids' bytes (see `same`): a chain of a thousand points looks each parent up once, rather than
        // scanning every point for each link.
        var byID: [[UInt8]: BackupPoint] = [:]
        for listed in points where byID[Array(listed.id.utf8)] == nil { byID[Array(listed.id.utf8)] = listed }
        var visited: Set<[UInt8]> = [Array(point.id.utf8)]
        while true {
            guard images.count < maximumDepth else {
                throw BackupError(
                    .repository,
                    "disk \(target) of point \(point.id) of \(domain) is based on more than \(maximumDepth) points; make a full backup"
                )
            }
            guard let disk = current.manifest.disks.first(where: { same($0.target, target) }) else {
                guard let child = images.last else {
                    let available = current.manifest.disks.map { printable($0.target) }.joined(separator: ", ")
                    throw BackupError(
                        .invalidRequest,
                        "point \(point.id) of \(domain) has no disk \(printable(target)); it has \(available)")
                }
                throw BackupError(
                    .repository,
                    "disk \(target) of point \(child.point) of \(domain) is backed by point \(current.id), which has no disk \(target); the repository is damaged"
                )
            }
            guard same(disk.image, imageName) else {
                throw BackupError(
                    .repository,
                    "the manifest of point \(current.id) of \(domain) names image \(printable(disk.image)) for disk \(target); a repository image may only be \(imageName)"
                )
            }
            let pointFolder = domainFolder + "/" + current.id
            try requireFolder(pointFolder)
            let path = pointFolder + "/" + imageName
            guard let backing = disk.backingImage else {
                images.append(Image(point: current.id, path: path, backingName: nil, recordedDigest: disk.imageDigest))
                return PointChain(target: target, images: images)
            }
            guard let parentID = current.manifest.parent, isSingleName(parentID) else {
                throw BackupError(
                    .repository,
                    "the manifest of point \(current.id) of \(domain) gives disk \(target) the backing image \(printable(backing)) but names no parent point it could be"
                )
            }
            let expected = "../" + parentID + "/" + imageName
            guard same(backing, expected) else {
                throw BackupError(
                    .repository,
                    "the manifest of point \(current.id) of \(domain) gives disk \(target) the backing image \(printable(backing)); a repository image may only be backed by \(printable(expected))"
                )
            }
            guard let parent = byID[Array(parentID.utf8)] else {
                throw BackupError(
                    .repository,
                    "point \(current.id) of \(domain) is based on \(printable(parentID)), which is not in the repository; restore it from another copy of the repository"
                )
            }
            guard visited.insert(Array(parent.id.utf8)).inserted else {
                throw BackupError(
                    .repository,
                    "the points of \(domain) name each other as parents (\(parent.id)); the repository is damaged")
            }
            images.append(
                Image(point: current.id, path: path, backingName: expected, recordedDigest: disk.imageDigest))
            current = parent
        }
    }

    /// The chain of disk `target` at `point` of `domain` in `repository`; see
    /// ``of(_:at:among:domain:in:)``.
    public static func of(
        _ target: String, at point: BackupPoint, domain: String, in repository: BackupRepository
    ) throws(BackupError) -> PointChain {
        guard isSingleName(domain) else {
            throw BackupError(.invalidRequest, "\(printable(domain)) is not a domain name a repository can hold")
        }
        let points = try PointsStep.repository { () throws(RepositoryError) in try repository.points(of: domain) }
        guard let committed = points.first(where: { same($0.id, point.id) }) else {
            throw BackupError(.repository, "\(point.id) is not a committed point of \(domain) in \(repository.root)")
        }
        return try of(target, at: committed, among: points, domain: domain, in: repository.folder(of: domain))
    }

    /// The repository and domain a point read from a repository belongs to: its folder is
    /// `<repository>/<domain>/<id>`.
    static func location(of point: BackupPoint) throws(BackupError) -> (repository: BackupRepository, domain: String) {
        let suffix = "/" + point.id
        guard isSingleName(point.id), point.folder.hasSuffix(suffix) else {
            throw BackupError(.invalidRequest, "point \(printable(point.id)) is not in a folder of its id")
        }
        let domainFolder = String(point.folder.dropLast(suffix.count))
        guard let slash = domainFolder.lastIndex(of: "/") else {
            throw BackupError(.invalidRequest, "point \(point.id) is not in a repository's domain folder")
        }
        let domain = String(domainFolder[domainFolder.index(after: slash)...])
        return (BackupRepository(root: String(domainFolder[..<slash])), domain)
    }

    // MARK: Names

    /// `name` with its control characters escaped, for a message.
    static func printable(_ name: String) -> String { UntrustedText.escaped(name) }

    /// Compares as bytes: two Strings are equal when canonically equivalent, two file names only when identical.
    private static func same(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// One path component that names nothing but itself, by the repository's one rule for names
    /// (``RepositoryNames/isValid(_:)``): checked here again because a chain is built from these names alone.
    static func isSingleName(_ name: String) -> Bool {
        RepositoryNames.isValid(name)
    }

    /// A folder of the repository must be a folder itself, not a symbolic link to one elsewhere.
    private static func requireFolder(_ path: String) throws(BackupError) {
        let status: Stat
        do throws(Errno) {
            status = try FilePath(path).stat(followTargetSymlink: false)
        } catch {
            throw BackupError(.repository, "cannot read \(path): \(error)")
        }
        guard status.type == .directory else {
            throw BackupError(
                .repository,
                "\(path) is \(status.type.spokenName), not a folder; a repository's folders must be folders")
        }
    }
}
