import QCOW2
import Repository
import UntrustedText

/// The images one disk of a backup point is read from: the point's own image, then its parent point's, down to a
/// standalone image, each with the backing file name its header must record.
///
/// The repository builds it by its rules of names (``Repository/BackupRepository/imageLayers(of:at:among:domain:)``):
/// from the committed points and their manifests only, never from a name read out of an image, anything else being
/// refused. Opening the images with ``QCOW2/QCOW2Chain/init(exactly:)`` then checks that each header agrees.
public struct PointChain: Sendable, Equatable {
    /// One image of the chain.
    public typealias Image = ImageLayer

    /// Longer chains are refused; it is also the most images a chain reader opens.
    public static let maximumDepth = BackupRepository.maximumChainDepth

    /// The disk's target, e.g. `vda`.
    public var target: String
    /// The images, the point's own first and the standalone base last.
    public var images: [Image]

    /// The chain as the images a reader must open, top first.
    public var expectedLayers: [QCOW2Chain.ExpectedLayer] {
        images.map(\.expectedLayer)
    }

    /// The chain of disk `target` at `point`, one of the committed points `points` of `domain`, whose folder in the
    /// repository is `domainFolder`. Reads no image; checks that the domain and point folders are folders, not
    /// symbolic links. Throws `.invalidRequest` when the point has no such disk, and `.repository` when a manifest
    /// names anything but what it may, a parent is missing, or the chain loops or is deeper than ``maximumDepth``.
    public static func of(
        _ target: String, at point: BackupPoint, among points: [BackupPoint], domain: String, in domainFolder: String
    ) throws(BackupError) -> PointChain {
        let images = try chainStep { () throws(RepositoryError) in
            try BackupRepository.imageLayers(
                of: target, at: point, among: points, domain: domain, inFolder: domainFolder)
        }
        return PointChain(target: target, images: images)
    }

    /// The chain of disk `target` at `point`, one of the committed points `points` of `domain` in `repository` (a
    /// folder or a bucket); see ``of(_:at:among:domain:in:)-(_,_,_,_,String)``.
    public static func of(
        _ target: String, at point: BackupPoint, among points: [BackupPoint], domain: String,
        in repository: BackupRepository
    ) throws(BackupError) -> PointChain {
        let images = try chainStep { () throws(RepositoryError) in
            try repository.imageLayers(of: target, at: point, among: points, domain: domain)
        }
        return PointChain(target: target, images: images)
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
        guard let committed = points.first(where: { $0.id.utf8.elementsEqual(point.id.utf8) }) else {
            throw BackupError(.repository, "\(point.id) is not a committed point of \(domain) in \(repository.root)")
        }
        let images = try chainStep { () throws(RepositoryError) in
            try repository.imageLayers(of: target, at: committed, among: points, domain: domain)
        }
        return PointChain(target: target, images: images)
    }

    /// The repository and domain a point read from a repository belongs to.
    static func location(of point: BackupPoint) throws(BackupError) -> (repository: BackupRepository, domain: String) {
        try chainStep { () throws(RepositoryError) in try BackupRepository.containing(point) }
    }

    /// A request the repository cannot answer (a name that is none, a disk the point lacks) is the caller's
    /// mistake; anything else is the repository's.
    private static func chainStep<T>(_ body: () throws(RepositoryError) -> T) throws(BackupError) -> T {
        do throws(RepositoryError) { return try body() } catch {
            let code: BackupError.Code =
                error.code == .invalidName || error.code == .notFound ? .invalidRequest : .repository
            throw BackupError(code, error.message, cause: error)
        }
    }

    // MARK: Names

    /// `name` with its control characters escaped, for a message.
    static func printable(_ name: String) -> String { UntrustedText.escaped(name) }

    /// One path component that names nothing but itself, by the repository's one rule for names
    /// (``RepositoryNames/isValid(_:)``).
    static func isSingleName(_ name: String) -> Bool {
        RepositoryNames.isValid(name)
    }
}
