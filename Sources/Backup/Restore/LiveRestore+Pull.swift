import Engine
import FileIO
import Foundation
import Libvirt
import QCOW2
import Repository

extension LiveRestore {
    /// How often the block jobs are looked at.
    static let pollInterval = Duration.milliseconds(200)

    /// Copies every disk of the live restore `state` (in `folder`) into its image and switches the disk onto it,
    /// starting the copies that are not running, until every disk is on its image; then removes the overlays, ends
    /// the serving process and removes the state. The domain runs on throughout. Interrupted, it leaves everything
    /// as it is, for `--resume`.
    public static func pull(
        _ state: LiveRestoreState, folder: String, connectURI: String?, progress: JobProgress? = nil
    ) async throws(BackupError) {
        let connection = try await RestoreStep.libvirt { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        do throws(BackupError) {
            try await pull(state, through: connection, progress: progress)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        DetachedProcess.terminate(state.serverPID)
        LocalPaths.remove([LiveRestoreState.fileName, socketName, logName].map { folder + "/" + $0 })
    }

    private static func pull(
        _ state: LiveRestoreState, through connection: LibvirtConnection, progress: JobProgress?
    ) async throws(BackupError) {
        let domain = try await RestoreStep.libvirt { () async throws(LibvirtError) in
            try await connection.domain(named: state.newName)
        }
        guard try await RestoreStep.libvirt({ () async throws(LibvirtError) in try await domain.state() }) == .running
        else {
            throw BackupError(
                .invalidRequest,
                "\(state.newName) is not running; start it on its exports (virsh start) and run the same restore with --resume"
            )
        }
        var copies: [DiskCopy] = []
        var onOverlay: [String] = []
        for disk in state.disks {
            switch try await stage(of: disk, state, domain) {
            case .switched: finish(disk, state)
            case .copying: copies.append(DiskCopy(disk: disk))
            case .onOverlay: onOverlay.append(disk)
            }
        }
        let shallow = state.pullBytesPerSecond == 0
        if shallow, !onOverlay.isEmpty {
            try await restoreImages(of: onOverlay, state, progress: progress)
        } else if !onOverlay.isEmpty {
            progress?.expect(parts: onOverlay.count)
        }
        for disk in onOverlay {
            if !shallow { try makeEmptyImage(of: disk, state) }
            try giveImageTheOverlaysOwner(disk, state)
            try await RestoreStep.libvirt { () async throws(LibvirtError) in
                try await domain.startBlockCopy(
                    disk: disk, into: state.images[disk] ?? "", format: "qcow2", shallow: shallow,
                    bytesPerSecond: UInt64(state.pullBytesPerSecond))
            }
            copies.append(DiskCopy(disk: disk, progress: shallow ? nil : progress?.start(disk)))
        }
        while !copies.isEmpty {
            for index in copies.indices.reversed() where try await follow(&copies[index], state, domain, progress) {
                copies.remove(at: index)
            }
            if copies.isEmpty { break }
            if Task.isCancelled {
                throw BackupError(
                    .interrupted,
                    "interrupted; \(state.newName) runs on, its disks still copying from the export: run the same restore with --resume to wait for them"
                )
            }
            try? await Task.sleep(for: pollInterval)
        }
    }

    // MARK: One disk

    /// A disk being copied, and how far its progress has been told (a full copy's, which is the whole pull).
    private struct DiskCopy {
        var disk: String
        var progress: CopyProgress?
        var done: UInt64 = 0
    }

    /// Where a disk of the live domain stands.
    private enum Stage { case onOverlay, copying, switched }

    private static func stage(of disk: String, _ state: LiveRestoreState, _ domain: Domain) async throws(BackupError)
        -> Stage
    {
        let (source, job) = try await RestoreStep.libvirt { () async throws(LibvirtError) in
            (try await domain.disks().first { $0.target == disk }?.sourcePath, try await domain.blockJob(disk: disk))
        }
        if let job {
            guard job.isCopy else {
                throw BackupError(
                    .invalidRequest,
                    "disk \(disk) of \(state.newName) runs another block job; end it (virsh blockjob \(state.newName) \(disk) --abort) and run the same restore with --resume"
                )
            }
            return .copying
        }
        switch source {
        case state.images[disk]: return .switched
        case state.overlays[disk]: return .onOverlay
        default:
            throw BackupError(
                .invalidRequest,
                "disk \(disk) of \(state.newName) is on \(source ?? "no image"), neither its overlay nor its image in the live restore's folder; it was changed by hand: finish it by hand"
            )
        }
    }

    /// Follows the copy of one disk; switches the disk onto its image once the copy has caught up. True when the
    /// disk is on its image.
    private static func follow(
        _ copy: inout DiskCopy, _ state: LiveRestoreState, _ domain: Domain, _ progress: JobProgress?
    ) async throws(BackupError) -> Bool {
        let disk = copy.disk
        let job = try await RestoreStep.libvirt { () async throws(LibvirtError) in
            try await domain.blockJob(disk: disk)
        }
        guard let job else {
            // Gone without a switch: QEMU ended the copy (the export failed, say), unless it was switched by hand.
            guard try await stage(of: disk, state, domain) == .switched else {
                throw BackupError(
                    .copy,
                    "the copy of \(disk) into \(state.images[disk] ?? "") stopped before it finished; \(state.newName) runs on its export: run the same restore with --resume"
                )
            }
            finish(&copy, state, progress)
            return true
        }
        copy.progress?.setTotal(job.total)
        if job.done > copy.done { copy.progress?.addRead(job.done - copy.done) }
        copy.done = max(copy.done, job.done)
        guard job.total > 0, job.done >= job.total else { return false }
        let switched = try await RestoreStep.libvirt { () async throws(LibvirtError) in
            try await domain.pivotBlockCopy(disk: disk)
        }
        if switched { finish(&copy, state, progress) }
        return switched
    }

    /// A disk on its image: its overlay goes, and its progress is done.
    private static func finish(_ copy: inout DiskCopy, _ state: LiveRestoreState, _ progress: JobProgress?) {
        finish(copy.disk, state)
        if let counted = copy.progress { progress?.finish(counted) }
    }

    private static func finish(_ disk: String, _ state: LiveRestoreState) {
        if let overlay = state.overlays[disk] { LocalPaths.remove([overlay]) }
    }

    /// Restores the point's `disks` straight from the repository into their images (replacing what a stopped pull
    /// left), checking every image of their chains as a plain restore does; the domain stays on its overlays.
    private static func restoreImages(of disks: [String], _ state: LiveRestoreState, progress: JobProgress?)
        async throws(BackupError)
    {
        let folder = ((state.images[disks[0]] ?? "") as NSString).deletingLastPathComponent
        let point: BackupPoint
        do throws(RepositoryError) {
            point = try BackupRepository(root: state.repository).point(state.point, of: state.domain)
        } catch {
            throw BackupError(error)
        }
        let plan = try PointRestore.plan(point, disks: disks, to: folder, format: .qcow2, overwrite: true)
        guard plan.images == state.images.filter({ disks.contains($0.key) }) else {
            throw BackupError(.invalidRequest, "the live restore's state names images a restore would not write")
        }
        try await PointRestore.check(plan)
        _ = try await PointRestore.write(plan, verifying: true, progress: progress)
    }

    /// Makes the disk's image afresh for a full copy: empty qcow2 of the disk's size, no backing.
    private static func makeEmptyImage(of disk: String, _ state: LiveRestoreState) throws(BackupError) {
        guard let image = state.images[disk], let size = state.sizes[disk] else {
            throw BackupError(.invalidRequest, "the live restore's state names no image for disk \(disk)")
        }
        LocalPaths.remove([image])
        do throws(QCOW2Error) {
            let writer = try QCOW2Writer(creating: image, size: size)
            defer { writer.close() }
            try writer.finalize()
        } catch {
            throw BackupError(.invalidRequest, "cannot create the image \(image): \(error.message)")
        }
    }

    /// The disk's image, 0600, becomes its overlay's owner's: QEMU's user opens it.
    private static func giveImageTheOverlaysOwner(_ disk: String, _ state: LiveRestoreState) throws(BackupError) {
        guard let image = state.images[disk], let overlay = state.overlays[disk] else {
            throw BackupError(.invalidRequest, "the live restore's state names no image for disk \(disk)")
        }
        do {
            let owner = try FileManager.default.attributesOfItem(atPath: overlay)
            try FileManager.default.setAttributes(
                [
                    .ownerAccountID: owner[.ownerAccountID] as Any,
                    .groupOwnerAccountID: owner[.groupOwnerAccountID] as Any, .posixPermissions: 0o600,
                ], ofItemAtPath: image)
        } catch {
            throw BackupError(
                .invalidRequest, "cannot give \(image) the owner of \(overlay): \(error.localizedDescription)")
        }
    }
}
