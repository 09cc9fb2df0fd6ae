import Engine
import Repository

/// The content digests of a backup point's disks (Engine's ``ContentDigest``), computed by reading each disk's chain
/// as a restore reads it, and compared with the digests the point's manifest recorded: `pullback digest --repo` and
/// `pullback verify --content`.
public enum PointDigest {
    /// One disk of one point: the digest read from its chain against the one its manifest recorded.
    public struct DiskCheck: Sendable, Codable, Equatable {
        public enum Status: String, Sendable, Codable {
            /// The chain reads as the point recorded.
            case ok
            /// The chain reads other bytes than the point recorded: an image was replaced or changed.
            case mismatch
            /// The point was made before content digests were kept (or on a parent without one); nothing to compare.
            case unrecorded
            /// The chain could not be opened or read: see `problem`.
            case unreadable
        }

        /// The domain whose point the disk belongs to.
        public var domain: String
        public var point: String
        public var target: String
        public var status: Status
        /// The content digest the manifest recorded, if it did.
        public var recorded: String?
        /// The content digest of what the chain reads; nil when it could not be read.
        public var actual: String?
        /// Why the chain is ``Status-swift.enum/unreadable``.
        public var problem: String?

        /// Whether the disk reads other bytes than recorded, or could not be read.
        public var isFailure: Bool { status == .mismatch || status == .unreadable }
    }

    /// What `pullback digest --repo` found for one point.
    public struct Report: Sendable, Codable {
        public var domain: String
        public var point: String
        public var disks: [DiskCheck]

        /// The disks whose chain does not read as recorded.
        public var mismatches: [DiskCheck] { disks.filter { $0.status == .mismatch } }
    }

    /// Digests disks `targets` (every disk when empty) of point `id` (or `latest`) of `domain` in the repository at
    /// `root`. Throws when the point or a disk is not there, a chain cannot be followed or read, or the run is
    /// interrupted; a digest that differs from the recorded one is in the report. `progress` counts the bytes read,
    /// one part per disk (named `<point> <target>`).
    public static func digest(
        repository root: String, domain: String, at id: String, targets: [String] = [], progress: JobProgress? = nil
    ) async throws(BackupError) -> Report {
        let repository = BackupRepository(root: root)
        let top = try VerifyStep.repository { () throws(RepositoryError) in try repository.point(id, of: domain) }
        let points = try VerifyStep.repository { () throws(RepositoryError) in try repository.points(of: domain) }
        var chains = try PointVerification.chains(of: top, among: points, domain: domain, in: repository)
        if !targets.isEmpty {
            let available = chains.map(\.target)
            for target in targets where !available.contains(target) {
                throw BackupError(
                    .invalidRequest,
                    "point \(top.id) of \(domain) has no disk \(PointChain.printable(target)); it has \(available.joined(separator: ", "))"
                )
            }
            chains = chains.filter { targets.contains($0.target) }
        }
        progress?.expect(parts: chains.count)
        var disks: [DiskCheck] = []
        for chain in chains {
            let digest = try await contentDigest(of: chain, name: "\(top.id) \(chain.target)", progress: progress)
            disks.append(compared(digest, with: top, domain: domain, target: chain.target))
        }
        return Report(domain: domain, point: top.id, disks: disks)
    }

    /// Reads `chains` (each disk's chain at `point` of `domain`) and compares each disk's content digest with the one
    /// `point` recorded. A chain that cannot be read is reported as such, and the others are still read; a disk whose
    /// point has no digest is not read. Only an interruption throws.
    static func check(
        _ chains: [PointChain], of point: BackupPoint, domain: String, progress: JobProgress?, namingDomain: Bool
    ) async throws(BackupError) -> [DiskCheck] {
        var disks: [DiskCheck] = []
        for chain in chains {
            let recorded = point.manifest.disks.first { $0.target == chain.target }?.contentDigest
            guard recorded != nil else {
                disks.append(
                    DiskCheck(
                        domain: domain, point: point.id, target: chain.target, status: .unrecorded, recorded: nil))
                continue
            }
            let name = (namingDomain ? domain + " " : "") + "\(point.id) \(chain.target) content"
            do throws(BackupError) {
                let digest = try await contentDigest(of: chain, name: name, progress: progress)
                var check = compared(digest, with: point, domain: domain, target: chain.target)
                // The block hashes the next point is built on must give the same digest, or that point gets none.
                let disk = point.manifest.disks.first { $0.target == chain.target }
                if check.status == .ok, let file = disk?.blockHashes,
                    await PointBlockHashes.table(of: point, target: chain.target, logger: nil) == nil
                {
                    check.status = .unreadable
                    check.problem =
                        "its block hashes \(PointChain.printable(file)) are missing or damaged, so the next backup of the disk records no content digest; the next full backup records one again"
                }
                disks.append(check)
            } catch  where error.code != .interrupted {
                disks.append(
                    DiskCheck(
                        domain: domain, point: point.id, target: chain.target, status: .unreadable,
                        recorded: recorded, problem: error.message))
            }
        }
        return disks
    }

    /// The content digest of what `chain` reads, its images opened exactly as a restore opens them (nothing an
    /// image's header names is followed); with `progress`, a part named `name` counting the data read.
    static func contentDigest(of chain: PointChain, name: String, progress: JobProgress?) async throws(BackupError)
        -> String
    {
        let counters = progress?.start(name) ?? CopyProgress()
        defer { progress?.finish(counters) }
        do throws(CopyError) {
            let source = try await QCOW2ChainSource.open(exactly: chain.expectedLayers)
            return try await ContentDigest.table(of: source, progress: counters).digest
        } catch {
            if error.code == .interrupted || Task.isCancelled {
                throw BackupError(.interrupted, "interrupted while reading disk \(chain.target) for its content digest")
            }
            throw BackupError(.repository, error.message, cause: error)
        }
    }

    /// `digest`, computed for disk `target` of `point`, against the digest its manifest recorded.
    private static func compared(_ digest: String, with point: BackupPoint, domain: String, target: String)
        -> DiskCheck
    {
        let recorded = point.manifest.disks.first { $0.target == target }?.contentDigest
        let status: DiskCheck.Status = recorded.map { $0 == digest ? .ok : .mismatch } ?? .unrecorded
        return DiskCheck(
            domain: domain, point: point.id, target: target, status: status, recorded: recorded, actual: digest)
    }
}
