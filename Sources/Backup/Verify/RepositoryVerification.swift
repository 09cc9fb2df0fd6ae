import Engine
import Foundation
import Repository

/// `pullback verify` over many points at once: the latest point, or every point, of one domain or of every domain
/// in a repository, each with the chain it is based on, as ``PointVerification`` checks one.
///
/// Every damaged, missing or unreadable image is reported, not only the first: an image shared by several points' chains is read
/// once. A point whose chain cannot be followed (a manifest names what it may not, a parent point is gone, a header
/// names another backing file) is a ``Problem`` of that point, and the other points are still checked; so is a
/// domain whose manifests cannot be read. With `content`, each checked point's disks are also read as a restore reads
/// them and their content digests compared with the recorded ones (``PointDigest``).
public enum RepositoryVerification {
    /// Which points of each domain are checked.
    public enum Scope: String, Sendable, Codable {
        /// The newest point of each domain, and the points it is based on.
        case latest
        /// Every committed point.
        case all
    }

    /// One point whose chain was checked.
    public struct CheckedPoint: Sendable, Codable, Equatable {
        public var domain: String
        public var point: String
    }

    /// A point (or, when `point` is nil, a whole domain) that could not be checked, and why.
    public struct Problem: Sendable, Codable, Equatable {
        public var domain: String
        public var point: String?
        public var message: String
    }

    /// What was checked and found, newest point first within each domain; domains sorted by name.
    public struct Report: Sendable, Codable {
        public var scope: Scope
        public var points: [CheckedPoint]
        /// Every image of the checked points' chains, each once.
        public var images: [PointVerification.ImageCheck]
        public var problems: [Problem]
        /// With `--content`: the content digest of each disk of each checked point whose chain could be followed and
        /// whose images read as committed; nil (absent from JSON) without it.
        public var contents: [PointDigest.DiskCheck]?

        /// The images that are damaged, gone or unreadable.
        public var failures: [PointVerification.ImageCheck] { images.filter(\.isFailure) }
        /// The disks whose chain reads other bytes than their point recorded, or could not be read.
        public var contentFailures: [PointDigest.DiskCheck] { (contents ?? []).filter(\.isFailure) }

        /// Whether every image reads as committed, every chain could be followed and, with `--content`, every disk
        /// reads as its point recorded.
        public var isClean: Bool { failures.isEmpty && problems.isEmpty && contentFailures.isEmpty }
    }

    /// Checks the `scope` points of `domains` (nil: every domain of the repository at `root`). Throws when the folder
    /// is not a repository, a named domain is not a name a repository may hold or has no point, or the run is
    /// interrupted; what is damaged is in the report. `progress` counts the bytes read, one part per image (and, with
    /// `content`, one per disk of each checked point).
    public static func verify(
        repository root: String, domains: [String]? = nil, scope: Scope, content: Bool = false,
        progress: JobProgress? = nil
    ) async throws(BackupError) -> Report {
        let repository = BackupRepository(root: root)
        let names = try VerifyStep.repository { () throws(RepositoryError) in
            if let domains {
                try repository.requireRepository()
                for domain in domains { try RepositoryNames.checkRequested(domain, as: "domain") }
                return domains
            }
            return try repository.domainNames()
        }
        var report = Report(scope: scope, points: [], images: [], problems: [])
        let (entries, chainsByPoint) = try collect(
            names, scope: scope, named: domains != nil, in: repository, root: root, into: &report)
        report.images = try await PointVerification.check(entries, progress: progress, namingDomains: domains == nil)
        // A chain whose images all read as committed is opened as a restore opens it, so that a header naming
        // another backing file than the manifests say is found too.
        let failed = Set(report.failures.map(\.path))
        var sound: [(top: BackupPoint, domain: String, chains: [PointChain])] = []
        for (point, top, chains) in chainsByPoint
        where !chains.contains(where: { $0.images.contains { failed.contains($0.path) } }) {
            do throws(BackupError) {
                try await PointVerification.checkHeaders(chains)
                sound.append((top, point.domain, chains))
            } catch  where error.code == .repository {
                report.problems.append(Problem(domain: point.domain, point: point.point, message: error.message))
            }
        }
        if content {
            var contents: [PointDigest.DiskCheck] = []
            for (top, domain, chains) in sound {
                contents += try await PointDigest.check(
                    chains, of: top, domain: domain, progress: progress, namingDomain: domains == nil)
            }
            report.contents = contents
        }
        return report
    }

    /// The images to read, each once, and the chains of each chosen point of `names`; a domain or point that cannot
    /// be followed is a problem in `report`. Throws when a domain the caller `named` has no point.
    private static func collect(
        _ names: [String], scope: Scope, named: Bool, in repository: BackupRepository, root: String,
        into report: inout Report
    ) throws(BackupError) -> (
        entries: [(domain: String, target: String, image: PointChain.Image)],
        chainsByPoint: [(point: CheckedPoint, top: BackupPoint, chains: [PointChain])]
    ) {
        var entries: [(domain: String, target: String, image: PointChain.Image)] = []
        var read = Set<String>()
        var chainsByPoint: [(point: CheckedPoint, top: BackupPoint, chains: [PointChain])] = []
        for domain in names {
            let points: [BackupPoint]
            do throws(RepositoryError) {
                points = try repository.points(of: domain)
            } catch {
                report.problems.append(Problem(domain: domain, point: nil, message: error.message))
                continue
            }
            if points.isEmpty, named {
                throw BackupError(.repository, "the repository \(root) has no backup of \(domain)")
            }
            let chosen = scope == .all ? points.reversed() : points.suffix(1)
            for point in chosen {
                let chains: [PointChain]
                do throws(BackupError) {
                    chains = try PointVerification.chains(of: point, among: points, domain: domain, in: repository)
                } catch {
                    report.problems.append(Problem(domain: domain, point: point.id, message: error.message))
                    continue
                }
                let checked = CheckedPoint(domain: domain, point: point.id)
                report.points.append(checked)
                chainsByPoint.append((checked, point, chains))
                for (target, image) in PointVerification.imagesByPoint(chains) where read.insert(image.path).inserted {
                    entries.append((domain, target, image))
                }
                // The point's own state files, whole: read once each, named by their kind.
                do throws(RepositoryError) {
                    for (kind, layer) in try point.stateLayers() where read.insert(layer.path).inserted {
                        entries.append((domain, kind.rawValue, layer))
                    }
                } catch {
                    report.problems.append(Problem(domain: domain, point: point.id, message: error.message))
                }
            }
        }
        return (entries, chainsByPoint)
    }
}
