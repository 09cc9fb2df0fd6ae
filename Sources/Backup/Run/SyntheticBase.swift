import Engine
import Repository

/// The repository's side of a synthetic full (``LevelChoice/isSynthetic``): the parent point's chain of each disk the
/// new point builds on, checked against the digests its manifests recorded before anything reads it, as `prune`
/// checks a chain before it merges one, since the new image gets a fresh digest over whatever it reads.
enum SyntheticBase {
    /// `base` with the chains of the chosen disks that continue from its parent (not a disk new since it, nor one
    /// without bitmaps), when every image they hold is intact and opens as a restore opens it. Otherwise a plain full,
    /// whose reason (the run's note) says why: a damaged chain is never merged.
    static func checked(
        _ base: LevelChoice, disks: [String], domain: String, points: [BackupPoint], repository: BackupRepository
    ) async throws(BackupError) -> LevelChoice {
        guard base.isSynthetic, let parent = base.parent else { return base }
        let targets = Set(parent.manifest.disks.map(\.target))
        do throws(BackupError) {
            var chains: [PointChain] = []
            for target in disks where targets.contains(target) {
                chains.append(
                    try PointChain.of(
                        target, at: parent, among: points, domain: domain, in: repository))
            }
            let checks = try await PointVerification.check(
                PointVerification.imagesByPoint(chains).map { (domain, $0.target, $0.image) }, progress: nil)
            let failures = checks.filter(\.isFailure)
            guard failures.isEmpty else {
                let count = failures.count == 1 ? "1 of its images is" : "\(failures.count) of its images are"
                throw BackupError(
                    .repository,
                    "\(count) damaged or missing (\(failures.map(\.path).joined(separator: ", ")); `pullback verify` says more)"
                )
            }
            try await PointVerification.checkHeaders(chains)
            var checked = base
            checked.repositoryLayers = Dictionary(
                chains.map { ($0.target, $0.expectedLayers) }, uniquingKeysWith: { first, _ in first })
            return checked
        } catch  where error.code == .interrupted {
            throw error
        } catch {
            let limit = LevelChoice.limitReason(parent, length: LevelChoice.chainLength(of: parent, among: points))
            let reason =
                "\(limit), and the chain cannot be built on: \(error.message); the new full point reads the disks in full"
            return LevelChoice(parent: nil, reason: reason)
        }
    }
}
