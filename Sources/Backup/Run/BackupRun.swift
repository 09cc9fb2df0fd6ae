import Engine
import Foundation
import Libvirt
import Logging
import Repository

#if canImport(Glibc)
    import Glibc
#endif

/// The backup coordinator: chooses the level, drives libvirt's pull-mode backup, copies every disk
/// through the engine into qcow2 images, and commits the point to the repository.
///
/// The repository, not libvirt, decides the incremental base: the newest committed point's checkpoint.
/// The backup job is ended on success, failure and cancellation; a failed run's checkpoint is deleted
/// (libvirt still tracks every change since the base for the base) and its point is never committed.
public enum BackupRun {
    /// Runs `request`. `logger` receives one-line notes for people at `notice` (skipped disks, why this level),
    /// what can be lived with at `warning` (a stale checkpoint left, a disk missing from the point), and each step at `info`; by default nothing
    /// is logged. Every event carries the domain's name as `domain` metadata.
    public static func run(
        _ request: BackupRequest,
        logger: Logger = Logger(label: "pullback.backup", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws(BackupError) -> BackupOutcome {
        var logger = logger
        logger[metadataKey: "domain"] = "\(request.domain)"
        let started = Date()
        let clock = ContinuousClock.now
        // Refused before anything is made or libvirt is asked: the name becomes the domain's folder, and a path that
        // is not a repository is never made one here (`pullback init` does that).
        let repository = try RunStep.repository { () throws(RepositoryError) in
            try RepositoryNames.checkRequested(request.domain, as: "domain")
            return try BackupRepository.open(root: request.repository)
        }
        let exportHost = try remoteExportHost(of: request)
        let connection = try await RunStep.libvirt { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: request.connectURI)
        }
        do throws(BackupError) {
            var outcome = try await run(
                request, repository: repository, connection: connection, exportHost: exportHost, started: started,
                logger: logger)
            await connection.close()
            outcome.seconds = (ContinuousClock.now - clock).inSeconds
            return outcome
        } catch {
            await connection.close()
            throw error
        }
    }

    private static func run(
        _ request: BackupRequest, repository: BackupRepository, connection: LibvirtConnection, exportHost: String?,
        started: Date, logger: Logger
    ) async throws(BackupError) -> BackupOutcome {
        let domain = try await RunStep.libvirt { () async throws(LibvirtError) in
            try await connection.domain(named: request.domain)
        }
        // Read before the lock: a request for disks the domain does not have is refused before anything is made.
        var prepared = try await PreparedBackup.read(domain, for: request, started: started)
        prepared.exportHost = exportHost
        // Only now that the domain and its disks are known: taking the lock makes the domain's folder.
        let lock: DomainLock
        do throws(RepositoryError) { lock = try repository.lock(request.domain) } catch { throw BackupError(error) }
        // Before the points are read: a killed prune's staged rewrite changes the point it replaces.
        do throws(RepositoryError) {
            try await repository.finishStagedRewrites(of: request.domain, lock: lock)
        } catch { throw BackupError(error) }
        let tightened = repository.tightenPermissions(of: request.domain, lock: lock)
        if tightened.count > 0 {
            logger.notice(
                "tightened permissions of \(tightened.count) \(tightened.count == 1 ? "file" : "files") in \(tightened.folder) to 0600/0700"
            )
        }
        try await AbandonedJobs.end(domain, repository: repository, lock: lock, logger: logger)
        try await refuseIfBusy(domain)
        let selection = prepared.selection
        for skipped in selection.skipped {
            if selection.missing.contains(skipped) {
                logger.warning("\(selection.warning(for: skipped))")
            } else {
                logger.notice("skipping \(skipped.target): \(skipped.reason)")
            }
        }
        let identity = try RunStep.repository { () throws(RepositoryError) in try repository.identity() }
        let points = try RunStep.repository { () throws(RepositoryError) in try repository.points(of: request.domain) }
        var base = try await LevelChoice.choose(
            request.level, domain: domain, points: points, maximumChain: request.maximumChain, logger: logger)
        if base.isSynthetic {
            request.progress?.enter(.checkingDigests)
            base = try await SyntheticBase.checked(
                base, disks: selection.chosen.map(\.target).filter { !selection.withoutBitmaps.contains($0) },
                domain: request.domain, points: points, repository: repository)
        }
        logger.notice("\(base.level.rawValue) backup: \(base.reason)")
        prepared.checksSource = SourceCheckSchedule.isDue(every: request.sourceCheckInterval, after: points)
        prepared.compression = request.compression ?? points.last?.manifest.clusterCompression ?? .none
        if prepared.checksSource {
            logger.notice("checking the point against the disks: each is read in full")
        }
        prepared.startedDomain = try await startIfShutOff(domain, progress: request.progress, logger: logger)
        await CheckpointPruning.prune(
            domain, repository: identity, keep: points.last?.manifest.checkpoint, logger: logger)
        return try await makePoint(
            prepared, base: base, repository: repository, identity: identity, lock: lock, logger: logger)
    }

    /// The host to reach the hypervisor's NBD export on, for a libvirt URI of another host; nil for a local one.
    /// Refuses a remote backup without client certificates unless plaintext is accepted, or with a client key others
    /// can read, before anything is made.
    private static func remoteExportHost(of request: BackupRequest) throws(BackupError) -> String? {
        let uri = request.connectURI ?? LibvirtConnection.defaultURI
        guard let uriHost = RemoteExport.remoteHost(of: uri) else { return nil }
        let export = request.remoteExport
        if !export.insecure, let problem = export.certificateProblem() {
            throw BackupError(
                .invalidRequest,
                "\(uri) is another host, whose disks come over TCP with TLS, and \(problem): put the client certificates there or give --nbd-tls-certificates DIR (README: Remote hypervisors), or pass --insecure-nbd to accept a plaintext export"
            )
        }
        if !export.insecure, let problem = export.privateKeyProblem() {
            throw BackupError(.invalidRequest, problem)
        }
        guard export.ports.lowerBound >= 1, export.ports.upperBound <= 65535 else {
            throw BackupError(.invalidRequest, "NBD ports must be from 1 to 65535")
        }
        return export.host ?? uriHost
    }

    /// libvirt lets one job run per domain, and a second backup would wait 30 s for it before failing with a
    /// timeout: refuse at once, before anything changes. (A shut-off domain has no job, and no job info.)
    private static func refuseIfBusy(_ domain: Domain) async throws(BackupError) {
        guard let job = try? await domain.jobInfo(), job.isActive else { return }
        let name = domain.name
        throw BackupError(
            .invalidRequest,
            job.isBackupActive
                ? "\(name) is being backed up already (by another repository or tool); wait for that backup to finish, or end a stale job with `virsh domjobabort \(name)`"
                : "\(name) is busy with another libvirt job (a migration, save or snapshot); wait for it to finish"
        )
    }

    /// Starts a shut-off domain paused, so that QEMU can export its disks; returns whether it did.
    private static func startIfShutOff(_ domain: Domain, progress: JobProgress?, logger: Logger)
        async throws(BackupError) -> Bool
    {
        let state = try await RunStep.libvirt { () async throws(LibvirtError) in try await domain.state() }
        guard state == .shutOff else { return false }
        progress?.enter(.startingDomain)
        logger.notice("\(domain.name) is shut off: starting it paused for the backup")
        try await RunStep.libvirt { () async throws(LibvirtError) in try await domain.start(paused: true) }
        return true
    }

    /// Copies the disks into a new point and commits it, falling back to a full backup under `auto` when the
    /// base checkpoint turns out unusable. A failed run leaves no checkpoint that could become a base, and a
    /// domain it started is shut off again.
    private static func makePoint(
        _ prepared: PreparedBackup, base: LevelChoice, repository: BackupRepository, identity: RepositoryIdentity,
        lock: borrowing DomainLock, logger: Logger
    ) async throws(BackupError) -> BackupOutcome {
        var base = base
        var checkpointName: String?
        var retries: [String: Int] = [:]
        var sourceChecks: [SourceCheckReport]?
        func attempt() async throws(BackupError) -> BackupPoint {
            let base = base
            return try await RunStep.transaction {
                try await repository.withNewPoint(of: prepared.request.domain, lock: lock, started: prepared.started) {
                    pending in
                    let name = CheckpointName.forPoint(pending.id, of: identity)
                    checkpointName = name
                    let copied = try await PullBackup.copy(
                        prepared, base: base, checkpoint: name, into: pending, logger: logger)
                    retries = copied.retries
                    sourceChecks = copied.sourceChecks
                    return copied.manifest
                }
            }
        }
        do throws(BackupError) {
            var point: BackupPoint
            do throws(BackupError) {
                point = try await attempt()
            } catch  where prepared.request.level == .auto && base.parent != nil && error.isUnusableCheckpoint {
                // The disks' bitmap for the base is broken (QEMU was killed, say): the chain cannot continue.
                base = LevelChoice(parent: nil, reason: "the base checkpoint cannot be used (\(error.message))")
                logger.warning("full backup instead: \(base.reason)")
                point = try await attempt()
            }
            logger.info("committed point \(point.id)")
            for check in sourceChecks ?? [] where check.differingBlocks > 0 {
                logger.warning(
                    "\(check.disk): the checkpoint's dirty bitmap missed changes in \(check.differingBlocks) blocks (\(check.differingBytes) bytes at \(check.rangeSummary)); they were copied from the disk, and point \(point.id) equals it"
                )
            }
            if let sourceChecks, sourceChecks.allSatisfy({ $0.differingBlocks == 0 }) {
                logger.notice("point \(point.id) equals the disks as read in full")
            }
            if prepared.startedDomain {
                prepared.request.progress?.enter(.stoppingDomain)
                try? await prepared.domain.live().destroy()
            }
            var result = outcome(of: point, reason: base.reason, selection: prepared.selection, retries: retries)
            result.sourceCheck = sourceChecks
            return result
        } catch {
            // The new checkpoint must never become a base; deleting it loses nothing of what changed since the base.
            let live = (try? await prepared.domain.live()) ?? prepared.domain
            if let checkpointName, let checkpoint = try? await live.checkpoint(named: checkpointName) {
                try? await checkpoint.delete()
            }
            if prepared.startedDomain { try? await live.destroy() }
            throw error
        }
    }

    private static func outcome(
        of point: BackupPoint, reason: String, selection: DiskSelection, retries: [String: Int]
    ) -> BackupOutcome {
        var outcome = BackupOutcome(
            domain: point.manifest.domainName, point: point.id, level: point.manifest.level.rawValue, reason: reason,
            parent: point.manifest.parent, checkpoint: point.manifest.checkpoint,
            disks: point.manifest.disks.map {
                BackupOutcome.Disk(
                    target: $0.target, mode: $0.backingImage == nil ? "full" : "incremental", bytesRead: $0.bytesCopied,
                    retries: retries[$0.target] ?? 0)
            },
            skipped: selection.skipped, missing: selection.missing, seconds: 0)
        if let state = point.manifest.state {
            var kinds: [String] = []
            for entry in state where !kinds.contains(entry.kind.rawValue) { kinds.append(entry.kind.rawValue) }
            outcome.state = kinds
        }
        return outcome
    }
}
