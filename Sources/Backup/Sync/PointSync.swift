import Engine
import Foundation
import Repository

/// `pullback sync`: copies the committed points a target repository lacks from a source repository, domain by
/// domain, oldest first, each object checked against its recorded digest on the way (``PointCopy``). Only new points
/// move, so a nightly sync costs what changed. Everything goes through the two repositories' stores, so any pair of
/// stores works.
///
/// Per domain the target's lock is held throughout, and what killed runs left there is removed first, so a killed
/// sync's next run redoes the point it was copying. A point that fails its checks is named in the report and not
/// copied, nor is any later point based on it; the other points and domains go on. A point the target has with
/// another manifest is a conflict: named, never overwritten.
public enum PointSync {
    /// Runs `request`. Throws when a repository cannot be opened, both are the same, a named domain has no point in
    /// the source, a target domain is locked, the target is full, or the run is interrupted; points not copied are
    /// in the report. `progress` gets one part per object copied.
    public static func sync(_ request: SyncRequest, progress: JobProgress? = nil) async throws(BackupError)
        -> SyncReport
    {
        let source = request.source
        var target = request.target
        try SyncStep.requireRepository(
            source, as: "--from", hint: "give the repository to copy points from (made by `pullback init`)")
        if resolvedLocation(of: source) == resolvedLocation(of: target) {
            throw BackupError(
                .invalidRequest,
                "--from and --to are the same repository (\(source.root)); sync copies points from one repository into another"
            )
        }
        let domains = try SyncStep.repository { () throws(RepositoryError) -> [String] in
            guard !request.domains.isEmpty else { return try source.domainNames() }
            var unique: [String] = []
            for domain in request.domains where !unique.contains(domain) {
                _ = try source.requiredPoints(of: domain)
                unique.append(domain)
            }
            return unique
        }
        if request.createsTarget {
            let asked = target
            target = try SyncStep.repository { () throws(RepositoryError) in
                try createIfAbsent(asked, keyFile: request.targetKeyFile)
            }
        }
        try SyncStep.requireRepository(
            target, as: "--to",
            hint: "make it with `pullback init --repo`, or add --init to make a new or empty folder one")
        if request.targetKeyFile != nil, !target.isEncrypted {
            throw BackupError(
                .invalidRequest,
                "--to \(target.root) is a plain repository, yet --to-key-file names a key for it: sync into an encrypted repository (pullback init --encrypt), or drop --to-key-file"
            )
        }
        var report = SyncReport(source: source.root, target: target.root, scope: request.scope, domains: [])
        for domain in domains {
            let points: [BackupPoint]
            do throws(RepositoryError) {
                points = try source.points(of: domain)
            } catch {
                // A domain whose manifests cannot be read (a damaged one, say) is named; the others go on.
                if Task.isCancelled { throw BackupError(.interrupted, "interrupted while listing \(domain)") }
                report.domains.append(
                    .init(
                        domain: domain, copied: [], present: 0, failed: [], skipped: [], bytes: 0,
                        problem: error.message))
                continue
            }
            // A domain of the source without points has nothing to copy: the target gets no folder for it.
            guard !points.isEmpty else { continue }
            report.domains.append(
                try await sync(
                    domain, points: points, into: target, scope: request.scope, limiter: request.rateLimiter,
                    progress: progress.map { ($0, report.domains.count) }))
        }
        return report
    }

    /// Copies what `scope` asks of `points` (the source's, oldest first) of `domain` into `target`, under its lock.
    private static func sync(
        _ domain: String, points: [BackupPoint], into target: BackupRepository, scope: SyncRequest.Scope,
        limiter: ByteRateLimiter?, progress: (job: JobProgress, partsBefore: Int)?
    ) async throws(BackupError) -> SyncReport.Domain {
        let lock = try SyncStep.lock(domain, in: target)
        let held = try SyncStep.repository { () throws(RepositoryError) in
            try target.removeLeftovers(of: domain, lock: lock)
            return try target.points(of: domain)
        }
        var plan = SyncPlan(source: points, target: held, scope: scope)
        let (counters, listed) =
            progress.map { start(domain, copying: plan.copies, in: $0.job, after: $0.partsBefore) }
            ?? (CopyProgress(), [:])
        defer { progress?.job.finish(counters) }
        var result = SyncReport.Domain(domain: domain, copied: [], present: 0, failed: [], skipped: [], bytes: 0)
        for point in plan.candidates {
            switch plan.decision(for: point) {
            case .present:
                result.present += 1
            case .conflict:
                result.failed.append(
                    .init(
                        point: point.id, reason: .conflict,
                        message:
                            "\(target.folder(of: domain))/\(point.id) has another manifest than the source's point by that id; it is left as it is"
                    ))
            case .dependent(let parent, let inSource):
                let why = inSource ? "which was not copied" : "which neither repository has"
                result.skipped.append(
                    .init(
                        point: point.id, reason: .dependent, basedOn: parent,
                        message: "point \(point.id) is based on \(parent), \(why)"))
            case .copy:
                do {
                    result.bytes += try await PointCopy.copy(
                        point, of: domain, into: target, lock: lock, objects: listed[point.id], counters: counters,
                        limiter: limiter)
                    result.copied.append(point.id)
                    plan.copied(point)
                } catch {
                    result.failed.append(try notCopied(point, after: error))
                }
            }
        }
        return result
    }

    /// Starts `progress`'s part for `domain`, which follows `partsBefore` parts (one per domain synced before),
    /// whose total is the size of the objects of `points`, the points it is to copy; returns its counters and the
    /// objects of each point, listed for that.
    private static func start(
        _ domain: String, copying points: [BackupPoint], in progress: JobProgress, after partsBefore: Int
    ) -> (
        CopyProgress, [String: [(name: String, size: UInt64)]]
    ) {
        var listed: [String: [(name: String, size: UInt64)]] = [:]
        for point in points {
            // A point whose objects cannot be listed fails its copy, which says why.
            listed[point.id] = try? point.objects()
        }
        let total = listed.values.joined().reduce(UInt64(0)) { $0 + $1.size }
        // One part per domain, begun once its points are known: the total is the domains' so far.
        progress.expect(parts: partsBefore + 1)
        let counters = progress.start(domain)
        counters.setTotal(total)
        return (counters, listed)
    }

    /// Why `point` was not copied, for the report; rethrows what ends the whole sync (an interruption, a full
    /// target).
    private static func notCopied(_ point: BackupPoint, after error: any Error) throws(BackupError)
        -> SyncReport.NotCopied
    {
        if let damage = error as? PointCopy.Damage {
            return .init(point: point.id, reason: .damaged, object: damage.object, message: damage.message)
        }
        let failure = BackupError(thrownBy: error)
        let noSpace = (failure.cause as? RepositoryError)?.code == .noSpace
        if failure.code == .interrupted || noSpace || Task.isCancelled { throw failure }
        let reason: SyncReport.NotCopied.Reason =
            (failure.cause as? RepositoryError)?.code == .corrupt ? .damaged : .failed
        return .init(point: point.id, reason: reason, message: failure.message)
    }

    /// Makes `repository` a new repository (``BackupRepository/create(in:)``) unless it is one already: nothing or
    /// an empty folder there becomes one; anything else is refused as `create` refuses it.
    private static func createIfAbsent(_ repository: BackupRepository, keyFile: String?) throws(RepositoryError)
        -> BackupRepository
    {
        do {
            try repository.requireRepository()
            return repository
        } catch  where error.code == .notARepository {
            do {
                return try BackupRepository.create(in: repository.store, keyFile: keyFile)
            } catch  where error.code == .alreadyARepository {
                // Another process made it in between.
                return BackupRepository(root: repository.root)
            }
        }
    }

    /// Where `repository` is, with symbolic links resolved for a folder, so that two spellings of one folder are
    /// known as one.
    private static func resolvedLocation(of repository: BackupRepository) -> String {
        let location = repository.store.location(of: nil)
        guard !location.contains("://") else { return location }
        return URL(fileURLWithPath: location).resolvingSymlinksInPath().standardizedFileURL.path
    }
}
