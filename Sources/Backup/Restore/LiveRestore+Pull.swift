import Engine
import FileIO
import Foundation
import Libvirt
import QCOW2

extension LiveRestore {
    /// How often the block jobs are looked at.
    static let pollInterval = Duration.milliseconds(200)

    /// Pulls every disk of the live restore `state` (in `folder`) into its overlay, starting the block pulls that
    /// are not running, until no overlay has a backing; then ends the serving process and removes the state. The
    /// domain runs on throughout. Interrupted, it leaves everything as it is, for `--resume`.
    public static func pull(
        _ state: LiveRestoreState, folder: String, connectURI: String?, progress: JobProgress? = nil
    ) async throws(BackupError) {
        let connection = try await RestoreStep.libvirt { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        do throws(BackupError) {
            try await pull(state, folder: folder, through: connection, progress: progress)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        DetachedProcess.terminate(state.serverPID)
        LocalPaths.remove([LiveRestoreState.fileName, socketName, logName].map { folder + "/" + $0 })
    }

    private static func pull(
        _ state: LiveRestoreState, folder: String, through connection: LibvirtConnection, progress: JobProgress?
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
        progress?.expect(parts: state.disks.count)
        var counters: [String: (progress: CopyProgress, done: UInt64)] = [:]
        for disk in state.disks {
            counters[disk] = (progress?.start(disk) ?? CopyProgress(), 0)
            let running = try await RestoreStep.libvirt { () async throws(LibvirtError) in
                try await domain.blockJob(disk: disk)
            }
            if running == nil, try hasBacking(state.overlays[disk] ?? "") {
                try await RestoreStep.libvirt { () async throws(LibvirtError) in
                    try await domain.startBlockPull(disk: disk, bytesPerSecond: state.pullBytesPerSecond)
                }
            }
        }
        while true {
            var remaining = 0
            for disk in state.disks {
                let job = try await RestoreStep.libvirt { () async throws(LibvirtError) in
                    try await domain.blockJob(disk: disk)
                }
                guard var counted = counters[disk] else { continue }
                if let job {
                    remaining += 1
                    counted.progress.setTotal(job.total)
                    if job.done > counted.done { counted.progress.addRead(job.done - counted.done) }
                    counted.done = max(counted.done, job.done)
                } else if try hasBacking(state.overlays[disk] ?? "") {
                    throw BackupError(
                        .copy,
                        "the pull of \(disk) into \(state.overlays[disk] ?? "") stopped before it finished; \(state.newName) runs on its export: run the same restore with --resume"
                    )
                } else {
                    progress?.finish(counted.progress)
                }
                counters[disk] = counted
            }
            if remaining == 0 { break }
            if Task.isCancelled {
                throw BackupError(
                    .interrupted,
                    "interrupted; \(state.newName) runs on, its disks still pulling from the export: run the same restore with --resume to wait for them"
                )
            }
            try? await Task.sleep(for: pollInterval)
        }
    }

    /// Whether the qcow2 image at `path` still names a backing file.
    static func hasBacking(_ path: String) throws(BackupError) -> Bool {
        guard let file = FileHandle(forReadingAtPath: path) else {
            throw BackupError(.invalidRequest, "the overlay \(path) is gone")
        }
        defer { try? file.close() }
        let head = Array((try? file.read(upToCount: 1 << 16)) ?? Data())
        let size = (try? file.seekToEnd()) ?? UInt64(head.count)
        do throws(QCOW2Error) {
            return try QCOW2Header.parse(head, fileSize: size).backingFileOffset != 0
        } catch {
            throw BackupError(.invalidRequest, "the overlay \(path) is not a qcow2 image any more: \(error.message)")
        }
    }
}
