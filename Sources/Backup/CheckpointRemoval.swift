import Foundation
import Libvirt
import Logging
import Repository

/// `pullback checkpoints DOMAIN --remove`: deletes one repository's checkpoints from a domain, bitmaps included.
///
/// - With a live repository (`--repo DIR`), only those it holds no point for: the one its newest point was made with
///   is the base of its next backup, and deleting it would make that backup a full. With `all`, every one of them.
///   The domain's lock in the repository is held meanwhile, so the checkpoint of a backup running into it (created
///   before its point is committed) is never taken for a stale one.
/// - With a tag (`--tag ID`), for a repository deleted or moved away: every checkpoint whose name carries the tag.
///   When the repository a checkpoint's description names is still there and holds a point for it, nothing is
///   deleted unless `all` is given: that repository's next backup would be a full.
///
/// libvirt deletes no checkpoint of a shut-off domain (libvirt 9.0: "cannot delete checkpoint for inactive domain"),
/// and deleting only its record would leave the bitmaps in the images, which QEMU loads and updates at the next start.
/// So a shut-off domain is started paused for the deletion and shut off again, as a backup does.
public enum CheckpointRemoval {
    /// Deletes the checkpoints `request` names. A checkpoint libvirt fails to delete is reported in the outcome's
    /// `failed`, after the others are deleted; a refusal (bad tag, not a repository, held checkpoints) deletes none.
    public static func run(
        _ request: CheckpointRemovalRequest,
        logger: Logger = Logger(label: "pullback.checkpoints", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws(BackupError) -> CheckpointRemovalOutcome {
        switch request.owner {
        case .repository(let root):
            let given = try CheckpointListing.GivenRepository.open(root)
            let domainFolder = given.repository.folder(of: request.domain)
            guard FileManager.default.fileExists(atPath: domainFolder) else {
                return try await remove(request, of: given, held: [], newest: nil, logger: logger)
            }
            let lock: DomainLock
            do {
                lock = try given.repository.lock(request.domain)
            } catch {
                throw BackupError(.repository, error.message, cause: error)
            }
            return try await remove(request, of: given, lock: lock, logger: logger)
        case .tag(let given):
            let tag = given.lowercased()
            guard CheckpointName.isTag(tag) else {
                throw BackupError(
                    .invalidRequest,
                    "--tag needs a repository tag, the 8 hex digits after pullback- in a checkpoint's name (pullback-0a1b2c3d-...), not \(RepositoryNames.quoted(given)); `pullback checkpoints \(request.domain)` lists them"
                )
            }
            return try await removeTag(tag, request, logger: logger)
        }
    }

    /// The repository's checkpoints, read with its points under `lock`.
    private static func remove(
        _ request: CheckpointRemovalRequest, of given: CheckpointListing.GivenRepository, lock: borrowing DomainLock,
        logger: Logger
    ) async throws(BackupError) -> CheckpointRemovalOutcome {
        let points = try BackupRun.repositoryStep { () throws(RepositoryError) in
            try given.repository.points(of: request.domain)
        }
        return try await remove(
            request, of: given, held: Set(points.map(\.manifest.checkpoint)), newest: points.last?.manifest.checkpoint,
            logger: logger)
    }

    /// Deletes the checkpoints of the repository `given` that are not in `held`, or with `all` every one; `newest` is
    /// the checkpoint of its newest point.
    private static func remove(
        _ request: CheckpointRemovalRequest, of given: CheckpointListing.GivenRepository, held: Set<String>,
        newest: String?, logger: Logger
    ) async throws(BackupError) -> CheckpointRemovalOutcome {
        let tag = given.identity.tag
        return try await CheckpointListing.withDomain(request.domain, connectURI: request.connectURI) {
            domain async throws(BackupError) in
            let (made, _) = try await CheckpointListing.read(domain)
            let names = made.map(\.name).filter { CheckpointName.isMade($0, byTag: tag) }
            let kept = request.all ? [] : names.filter { held.contains($0) }
            let removing = names.filter { !kept.contains($0) }
            var outcome = CheckpointRemovalOutcome(domain: request.domain, tag: tag, repository: given.path, kept: kept)
            try await delete(removing, of: domain, into: &outcome, logger: logger)
            outcome.nextBackupFull = newest.map { outcome.removed.contains($0) } ?? false
            return outcome
        }
    }

    /// Deletes every checkpoint carrying `tag`, unless the repository a description names still holds a point for one
    /// of them and `all` is not given.
    private static func removeTag(
        _ tag: String, _ request: CheckpointRemovalRequest, logger: Logger
    ) async throws(BackupError) -> CheckpointRemovalOutcome {
        try await CheckpointListing.withDomain(request.domain, connectURI: request.connectURI) {
            domain async throws(BackupError) in
            let (made, _) = try await CheckpointListing.read(domain)
            let listed = CheckpointListing.classify(
                made.filter { CheckpointName.isMade($0.name, byTag: tag) }, domain: request.domain, given: nil)
            let held = listed.filter { $0.holdsPoint == .yes }
            if let first = held.first, !request.all {
                let path = first.repository ?? ""
                throw BackupError(
                    .invalidRequest,
                    "the repository \(path) (tag \(tag)) is still there and holds points made with \(held.count == 1 ? "one" : "\(held.count)") of these checkpoints: remove only those it holds no point for with --repo \(path), or add --all to remove them all (its next backup of \(request.domain) will then be a full); nothing was removed"
                )
            }
            var outcome = CheckpointRemovalOutcome(
                domain: request.domain, tag: tag, repository: Set(listed.compactMap(\.repository)).first, kept: [])
            try await delete(listed.map(\.name), of: domain, into: &outcome, logger: logger)
            outcome.nextBackupFull = held.contains { outcome.removed.contains($0.name) }
            return outcome
        }
    }

    /// Deletes `names` from `domain`, starting a shut-off domain paused for it and shutting it off after.
    private static func delete(
        _ names: [String], of domain: Domain, into outcome: inout CheckpointRemovalOutcome, logger: Logger
    ) async throws(BackupError) {
        guard !names.isEmpty else { return }
        let state = try await BackupRun.libvirtStep { () async throws(LibvirtError) in try await domain.state() }
        if state == .shutOff {
            logger.notice(
                "\(domain.name) is shut off: starting it paused to delete the checkpoints' bitmaps, then shutting it off"
            )
            try await BackupRun.libvirtStep { () async throws(LibvirtError) in try await domain.start(paused: true) }
            outcome.startedDomain = true
        }
        for name in names {
            do throws(LibvirtError) {
                try await domain.checkpoint(named: name).delete()
                outcome.removed.append(name)
            } catch {
                outcome.failed.append(CheckpointRemovalOutcome.Failure(name: name, message: error.message))
            }
        }
        if outcome.startedDomain {
            do throws(LibvirtError) {
                try await domain.destroy()
            } catch {
                logger.warning("cannot shut \(domain.name) off again after deleting its checkpoints: \(error.message)")
            }
        }
    }
}
