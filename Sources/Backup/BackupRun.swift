import Engine
import Foundation
import Libvirt
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
    /// Runs `request`. `say` receives one-line notes for people (skipped disks, why this level).
    public static func run(
        _ request: BackupRequest, say: @Sendable (String) -> Void = { _ in }
    ) async throws(BackupError) -> BackupOutcome {
        let started = Date()
        let clock = ContinuousClock.now
        let repository = BackupRepository(root: request.repository)
        let lock: DomainLock
        do {
            lock = try repository.lock(request.domain)
        } catch {
            throw BackupError(.repository, error.message, cause: error)
        }
        let connection = try await libvirtStep { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: request.connectURI)
        }
        do throws(BackupError) {
            let outcome = try await run(
                request, repository: repository, lock: lock, connection: connection, started: started, say: say)
            await connection.close()
            return BackupOutcome(
                domain: outcome.domain, point: outcome.point, level: outcome.level, reason: outcome.reason,
                parent: outcome.parent, checkpoint: outcome.checkpoint, disks: outcome.disks,
                skipped: outcome.skipped, seconds: (ContinuousClock.now - clock).inSeconds)
        } catch {
            await connection.close()
            throw error
        }
    }

    private static func run(
        _ request: BackupRequest, repository: BackupRepository, lock: borrowing DomainLock,
        connection: LibvirtConnection, started: Date, say: @Sendable (String) -> Void
    ) async throws(BackupError) -> BackupOutcome {
        let domain = try await libvirtStep { () async throws(LibvirtError) in
            try await connection.domain(named: request.domain)
        }
        let (uuid, domainXML, disks) = try await libvirtStep { () async throws(LibvirtError) in
            (try await domain.uuid(), try await domain.xmlDescription(), try await domain.disks())
        }
        try await AbandonedJobs.end(domain, repository: repository, lock: lock, say: say)
        // libvirt lets one job run per domain, and a second backup would wait 30 s for it before failing with a
        // timeout: refuse at once, before anything changes. (A shut-off domain has no job, and no job info.)
        if let job = try? await domain.jobInfo(), job.isActive {
            throw BackupError(
                .invalidRequest,
                job.isBackupActive
                    ? "\(request.domain) is being backed up already (by another repository or tool); wait for that backup to finish, or end a stale job with `virsh domjobabort \(request.domain)`"
                    : "\(request.domain) is busy with another libvirt job (a migration, save or snapshot); wait for it to finish"
            )
        }
        let selection = DiskSelection(disks: disks, only: request.disks, excluded: request.excluded)
        for skipped in selection.skipped { say("skipping \(skipped.target): \(skipped.reason)") }
        guard !selection.chosen.isEmpty else {
            throw BackupError(.invalidRequest, "\(request.domain) has no disk to back up (see the skipped disks above)")
        }
        let identity = try repositoryStep { () throws(RepositoryError) in try repository.identity() }
        let points = try repositoryStep { () throws(RepositoryError) in try repository.points(of: request.domain) }
        var base = try await LevelChoice.choose(request.level, domain: domain, latest: points.last, say: say)
        say("\(base.parent == nil ? "full" : "incremental") backup: \(base.reason)")

        let wasShutOff = try await libvirtStep { () async throws(LibvirtError) in try await domain.state() } == .shutOff
        if wasShutOff {
            say("\(request.domain) is shut off: starting it paused for the backup")
            try await libvirtStep { () async throws(LibvirtError) in try await domain.start(paused: true) }
        }
        await CheckpointPruning.prune(
            domain, repository: identity, points: points, keep: points.last?.manifest.checkpoint, say: say)

        var checkpointName: String?
        do throws(BackupError) {
            var point: BackupPoint
            do throws(BackupError) {
                point = try await makePoint()
            } catch  where request.level == .auto && base.parent != nil && error.isUnusableCheckpoint {
                // The disks' bitmap for the base is broken (QEMU was killed, say): the chain cannot continue.
                base = LevelChoice(parent: nil, reason: "the base checkpoint cannot be used (\(error.message))")
                say("full backup instead: \(base.reason)")
                point = try await makePoint()
            }
            if wasShutOff { try? await domain.live().destroy() }
            return BackupOutcome(
                domain: request.domain, point: point.id, level: point.manifest.level.rawValue, reason: base.reason,
                parent: point.manifest.parent, checkpoint: point.manifest.checkpoint,
                disks: point.manifest.disks.map {
                    BackupOutcome.Disk(
                        target: $0.target, mode: $0.backingImage == nil ? "full" : "incremental",
                        bytesRead: $0.bytesCopied)
                },
                skipped: selection.skipped, seconds: 0)
        } catch {
            // The new checkpoint must never become a base; deleting it loses nothing of what changed since the base.
            let live = (try? await domain.live()) ?? domain
            if let checkpointName, let checkpoint = try? await live.checkpoint(named: checkpointName) {
                try? await checkpoint.delete()
            }
            if wasShutOff { try? await live.destroy() }
            throw error
        }

        func makePoint() async throws(BackupError) -> BackupPoint {
            let base = base
            return try await pointStep {
                try await repository.withNewPoint(of: request.domain, lock: lock, started: started) { pending in
                    let name = CheckpointName.forPoint(pending.id, of: identity)
                    checkpointName = name
                    return try await PullBackup.copy(
                        request, domain: domain, disks: selection.chosen, skipped: selection.skipped.map(\.target),
                        base: base, checkpoint: name, into: pending, uuid: uuid, domainXML: domainXML, started: started,
                        startedDomain: wasShutOff)
                }
            }
        }
    }

    // MARK: Error mapping

    static func libvirtStep<T>(_ body: () async throws(LibvirtError) -> T) async throws(BackupError) -> T {
        do { return try await body() } catch {
            throw BackupError(.libvirt, error.message, cause: error)
        }
    }

    static func repositoryStep<T>(_ body: () throws(RepositoryError) -> T) throws(BackupError) -> T {
        do { return try body() } catch {
            throw BackupError(.repository, error.message, cause: error)
        }
    }

    static func pointStep<T>(_ body: () async throws -> T) async throws(BackupError) -> T {
        do { return try await body() } catch let error as BackupError {
            throw error
        } catch let error as RepositoryError {
            throw BackupError(.repository, error.message, cause: error)
        } catch {
            throw BackupError(.copy, "\(error)")
        }
    }
}
