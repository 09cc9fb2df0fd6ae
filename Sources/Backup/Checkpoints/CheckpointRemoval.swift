import Foundation
import Libvirt
import Logging
import Repository

/// `pullback checkpoints DOMAIN --remove`: deletes one repository's checkpoints from a domain, bitmaps included.
///
/// - With a live repository (`--repo DIR`), only those it holds no point for: the one its newest point was made with
///   is the base of its next backup, and deleting it would make that backup a full. With `all`, every one of them.
///   The domain's lock in the repository is held meanwhile, so the checkpoint of a backup running into it (created
///   before its point is committed) is never taken for a stale one. A checkpoint whose description names another
///   folder where a repository of the same tag is (a copy keeps its id) is that one's, and is never deleted through
///   this one, not even with `all`: it may be the other's base, or the checkpoint of a backup running into it.
/// - With a tag (`--tag ID`), for a repository deleted: every checkpoint whose name carries the tag, provided the
///   repository each one's description names is gone. A repository still there, or a checkpoint whose repository is
///   unknown (made before descriptions named a path) or cannot be read, refuses the removal unless `all` is given:
///   that repository's next backup would be a full.
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
            return try await CheckpointListing.withDomain(request.domain, connectURI: request.connectURI) {
                domain async throws(BackupError) in
                // Taken once the domain is known, as a backup takes it, and like a backup's it makes the domain's
                // folder when there is none yet: a first backup into the repository starting meanwhile then finds the
                // lock held rather than creating a checkpoint this removal would take for a stale one.
                let lock: DomainLock
                do throws(RepositoryError) {
                    lock = try given.repository.lock(request.domain)
                } catch {
                    throw BackupError(error)
                }
                return try await remove(request, of: given, in: domain, lock: lock, logger: logger)
            }
        case .tag(let given):
            let tag = given.lowercased()
            guard CheckpointName.isTag(tag) else {
                throw BackupError(
                    .invalidRequest,
                    "--tag needs a repository tag, the 8 hex digits after pullback- in a checkpoint's name (pullback-0a1b2c3d-...), not \(RepositoryNames.quoted(given)); `\(CheckpointListing.command(request.domain))` lists them"
                )
            }
            return try await removeTag(tag, request, logger: logger)
        }
    }

    /// Deletes the checkpoints of the repository `given` whose points, read under `lock`, were not made with them, or
    /// with `all` every one; those a repository at another folder made are left.
    private static func remove(
        _ request: CheckpointRemovalRequest, of given: CheckpointListing.GivenRepository, in domain: Domain,
        lock: borrowing DomainLock, logger: Logger
    ) async throws(BackupError) -> CheckpointRemovalOutcome {
        let points = try CheckpointsStep.repository { () throws(RepositoryError) in
            try given.repository.points(of: request.domain)
        }
        let held = Set(points.map(\.manifest.checkpoint))
        let tag = given.identity.tag
        let (made, _) = try await CheckpointListing.read(domain)
        let listed = CheckpointListing.classify(
            made.filter { CheckpointName.isMade($0.name, byTag: tag) }, domain: request.domain, given: given)
        var outcome = CheckpointRemovalOutcome(domain: request.domain, tag: tag, repository: given.path, kept: [])
        var removing: [String] = []
        for checkpoint in listed {
            if let path = checkpoint.repository, path != given.path {
                outcome.heldElsewhere.append(
                    .init(name: checkpoint.name, repository: path, why: elsewhere(checkpoint, path, request.domain)))
            } else if held.contains(checkpoint.name), !request.all {
                outcome.kept.append(checkpoint.name)
            } else {
                removing.append(checkpoint.name)
            }
        }
        try await delete(removing, of: domain, into: &outcome, logger: logger)
        outcome.nextBackupFull = points.last.map { outcome.removed.contains($0.manifest.checkpoint) } ?? false
        return outcome
    }

    /// Why `checkpoint`, which the repository at `path` made, is not deleted through another folder's `--repo`.
    static func elsewhere(_ checkpoint: ListedCheckpoint, _ path: String, _ domain: String) -> String {
        switch checkpoint.holdsPoint {
        case .yes:
            "held by the repository at \(path), a copy of this one shares its id"
        case .no:
            "made by the repository at \(path), a copy of this one shares its id; `\(CheckpointListing.command(domain, "--remove", "--repo", path))` removes it"
        default:
            "made by the repository at \(path), which cannot be read (\(checkpoint.detail ?? "unknown")) and may be a copy of this one"
        }
    }

    /// Deletes every checkpoint carrying `tag` whose repository is gone; with `all`, every one whatever its repository.
    private static func removeTag(
        _ tag: String, _ request: CheckpointRemovalRequest, logger: Logger
    ) async throws(BackupError) -> CheckpointRemovalOutcome {
        try await CheckpointListing.withDomain(request.domain, connectURI: request.connectURI) {
            domain async throws(BackupError) in
            let (made, _) = try await CheckpointListing.read(domain)
            let listed = CheckpointListing.classify(
                made.filter { CheckpointName.isMade($0.name, byTag: tag) }, domain: request.domain, given: nil)
            if !request.all, let refusal = refusal(listed, tag: tag, domain: request.domain) {
                throw BackupError(.invalidRequest, refusal)
            }
            var outcome = CheckpointRemovalOutcome(
                domain: request.domain, tag: tag, repository: Set(listed.compactMap(\.repository)).first, kept: [])
            try await delete(listed.map(\.name), of: domain, into: &outcome, logger: logger)
            let present: Set<ListedCheckpoint.Holding> = [.yes, .no]
            outcome.nextBackupFull = listed.contains { $0.holdsPoint == .yes && outcome.removed.contains($0.name) }
            if listed.contains(where: { !present.contains($0.holdsPoint) && outcome.removed.contains($0.name) }) {
                logger.warning(
                    "a repository of tag \(tag) that still exists elsewhere (moved, or on a disk not mounted) will make a full backup of \(request.domain) next"
                )
            }
            return outcome
        }
    }

    /// Why `--tag` without `--all` removes none of `listed`, nil when every one's repository is gone: one is still
    /// there, or one's is unknown or cannot be read (it may be the base of a live repository's next backup).
    static func refusal(_ listed: [ListedCheckpoint], tag: String, domain: String) -> String? {
        let there = listed.filter { $0.holdsPoint == .yes || $0.holdsPoint == .no }
        if let path = there.first?.repository {
            let held = there.filter { $0.holdsPoint == .yes }.count
            let holds =
                held == 0 ? "" : " and holds points made with \(held == 1 ? "one" : "\(held)") of these checkpoints"
            let full = held == 0 ? "" : " (its next backup of \(domain) will then be a full)"
            let command = CheckpointListing.command(domain, "--remove", "--repo", path)
            return
                "the repository \(path) (tag \(tag)) is still there\(holds): remove only those it holds no point for with `\(command)`, or add --all to remove them all\(full); nothing was removed"
        }
        let unknown = listed.filter { $0.holdsPoint == .unknown || $0.holdsPoint == .unreadable }
        guard !unknown.isEmpty else { return nil }
        let (count, them) = unknown.count == 1 ? ("1 checkpoint", "it") : ("\(unknown.count) checkpoints", "them")
        let command = CheckpointListing.command(domain, "--remove", "--repo", "DIR")
        return
            "\(count) of repository \(tag) \(unknown.count == 1 ? "records" : "record") no repository path or one that cannot be read, so a live repository may continue from \(them): check \(them) against the repository with `\(command)`, or add --all to remove \(them) anyway; nothing was removed"
    }

    /// Deletes `names` from `domain`, starting a shut-off domain paused for it and shutting it off after.
    private static func delete(
        _ names: [String], of domain: Domain, into outcome: inout CheckpointRemovalOutcome, logger: Logger
    ) async throws(BackupError) {
        guard !names.isEmpty else { return }
        let state = try await CheckpointsStep.libvirt { () async throws(LibvirtError) in try await domain.state() }
        if state == .shutOff {
            logger.notice(
                "\(domain.name) is shut off: starting it paused to delete the checkpoints' bitmaps, then shutting it off"
            )
            try await CheckpointsStep.libvirt { () async throws(LibvirtError) in try await domain.start(paused: true) }
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
