import FileIO
import Foundation
import Libvirt
import QCOW2
import Repository
import SystemPackage

/// `pullback restore --live`: a point booted as a new domain in seconds. The point is served over NBD by a process
/// of its own, which outlives the command; each disk of the new domain starts on a qcow2 overlay whose backing is its
/// export; the domain starts at once. Then each disk's standalone image is restored straight from the repository, as
/// `pullback restore` writes it, while the guest runs on; a shallow libvirt block copy moves what the guest wrote to
/// its overlay meanwhile into the image, and mirrors its writes, until the disk is switched onto the image. When every
/// disk is switched the overlays are removed and the serving process ends. With a rate limit, QEMU copies the whole
/// disk from the export instead (a full block copy), at that rate.
///
/// Why not libvirt's block pull into the overlays: a pull (QEMU's block-stream) reads the whole export, zeros too, one
/// 512 KiB chunk at a time (1.53 s for a 1 GiB disk holding 256 MiB). A full block copy (QEMU's mirror) asks the
/// export's block status and keeps several requests in flight (0.56 s), but still moves every byte through the
/// export and QEMU: about twice a plain restore's time for the 4 GiB bench disk. The restore itself is that time.
///
/// ``start(_:)`` does everything up to the running domain, and undoes what it did when a step fails: nothing is left
/// defined or running. ``pull(_:connectURI:progress:)`` does the rest, and can be run again on the folder's state
/// (`--resume`) when the command was stopped.
public enum LiveRestore {
    /// The unix socket of the exports, in the overlays' folder.
    static let socketName = "export.sock"
    /// The serving process's log, in the overlays' folder.
    static let logName = "serve.log"
    /// What an overlay's name adds to its disk's target; the image the disk ends on is `<target>.qcow2`.
    static let overlaySuffix = ".overlay.qcow2"

    /// Serves the point, makes the overlays, defines and starts the new domain; returns the state to pull with.
    public static func start(_ request: LiveRestoreRequest) async throws(BackupError) -> LiveRestoreState {
        let folder = URL(fileURLWithPath: request.folder).standardizedFileURL.path
        let (point, saved) = try readPoint(request)
        let disks = try chosenDisks(of: point, request.disks)
        let madeFolder = try prepareFolder(folder)
        let overlays = Dictionary(
            uniqueKeysWithValues: disks.map { ($0.target, folder + "/" + $0.target + overlaySuffix) })
        let socket = folder + "/" + socketName
        let nvram = folder + "/" + RestoredState.nvramName
        var cleanup = Cleanup(folder: madeFolder ? folder : nil, files: Array(overlays.values) + [socket, nvram])
        do throws(BackupError) {
            let restored = try RestoredState.read(from: point)
            let pending = try await PendingDefinition.prepare(
                from: saved, name: request.newName, images: overlays, format: "qcow2", connectURI: request.connectURI,
                state: restored, nvram: nvram)
            do {
                try restored.writeNVRAM(to: nvram, replacing: false)
                cleanup.serverPID = try await startServer(request, point: point.id, socket: socket, folder: folder)
                for disk in disks {
                    try makeOverlay(overlays[disk.target]!, size: disk.virtualSize, export: disk.target, socket: socket)
                }
                if let owner = pending.qemuOwner {
                    let nvramFile = restored.nvram == nil ? [] : [nvram]
                    try grant(owner, folder: folder, files: Array(overlays.values) + [socket] + nvramFile)
                }
                _ = try await pending.backed(byExportsOf: disks.map(\.target), socket: socket).define(starting: true)
            } catch {
                // `define` closed the connection already when it was reached; closing again does nothing.
                await pending.close()
                throw error
            }
            let state = LiveRestoreState(
                newName: request.newName, repository: request.repository, domain: request.domain, point: point.id,
                disks: disks.map(\.target),
                serverPID: cleanup.serverPID ?? 0, socket: socket, overlays: overlays,
                images: Dictionary(
                    uniqueKeysWithValues: disks.map { ($0.target, folder + "/" + $0.target + ".qcow2") }),
                sizes: Dictionary(uniqueKeysWithValues: disks.map { ($0.target, $0.virtualSize) }),
                pullBytesPerSecond: request.pullBytesPerSecond)
            try save(state, in: folder)
            return state
        } catch {
            cleanup.undo()
            throw error
        }
    }

    /// The state a live restore left in `folder`, for `--resume`.
    public static func state(in folder: String) throws(BackupError) -> LiveRestoreState {
        let path = folder + "/" + LiveRestoreState.fileName
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackupError(
                .invalidRequest,
                "\(folder) holds no live restore to resume (no \(LiveRestoreState.fileName)); start one with restore --live"
            )
        }
        do { return try JSONDecoder().decode(LiveRestoreState.self, from: data) } catch {
            throw BackupError(.invalidRequest, "\(path) is not a live restore's state (\(error))")
        }
    }

    // MARK: Steps

    private static func readPoint(_ request: LiveRestoreRequest) throws(BackupError) -> (BackupPoint, String) {
        do throws(RepositoryError) {
            let point = try BackupRepository(root: request.repository).point(request.point, of: request.domain)
            guard let saved = try point.savedFile("domain.xml") else {
                throw RepositoryError(
                    .notFound, "point \(point.id) of \(request.domain) has no saved domain.xml to define a domain from")
            }
            return (point, saved)
        } catch {
            throw BackupError(error)
        }
    }

    private static func chosenDisks(of point: BackupPoint, _ asked: [String]) throws(BackupError)
        -> [BackupManifest.Disk]
    {
        let all = point.manifest.disks
        for target in asked where !all.contains(where: { $0.target == target }) {
            throw BackupError(
                .invalidRequest,
                "point \(point.id) has no disk \(target); its disks are \(all.map(\.target).joined(separator: ", "))")
        }
        return asked.isEmpty ? all : all.filter { asked.contains($0.target) }
    }

    /// Makes `folder` (0700) or checks that it is empty; true when it was made.
    private static func prepareFolder(_ folder: String) throws(BackupError) -> Bool {
        if FileManager.default.fileExists(atPath: folder) {
            guard LocalPaths.isEmptyFolder(folder) else {
                throw BackupError(
                    .invalidRequest,
                    "\(folder) is not an empty folder: a live restore puts its overlays in a new or empty folder; choose another --to"
                )
            }
            return false
        }
        do {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw BackupError(.invalidRequest, "cannot create \(folder): \(error.localizedDescription)")
        }
        return true
    }

    /// Starts `pullback serve` of the point on `socket`, in a process that outlives this one, and waits until its
    /// socket is there.
    private static func startServer(
        _ request: LiveRestoreRequest, point: String, socket: String, folder: String
    ) async throws(BackupError) -> Int32 {
        var arguments = ["serve", "--repo", request.repository, request.domain, "--at", point, "--socket", socket]
        if let keyFile = request.keyFile { arguments += ["--key-file", keyFile] }
        let log = folder + "/" + logName
        let pid: Int32
        do throws(Errno) {
            pid = try DetachedProcess.spawn(request.serverExecutable, arguments, log: log)
        } catch {
            throw BackupError(.invalidRequest, "cannot start \(request.serverExecutable) serve: \(error)")
        }
        if await LocalPaths.appears(socket, within: 30, while: { DetachedProcess.isRunning(pid) }) { return pid }
        DetachedProcess.terminate(pid)
        let said =
            (try? String(contentsOfFile: log, encoding: .utf8))?
            .split(separator: "\n").last.map(String.init) ?? "no output"
        throw BackupError(.invalidRequest, "the point could not be served for the new domain: \(said)")
    }

    /// A new qcow2 overlay at `path` of `size` bytes whose backing is the export `export` on `socket`, raw.
    private static func makeOverlay(_ path: String, size: UInt64, export: String, socket: String)
        throws(BackupError)
    {
        let backing = "nbd+unix:///\(export)?socket=\(socket)"
        do throws(QCOW2Error) {
            let writer = try QCOW2Writer(creating: path, size: size, backingFile: backing, backingFormat: "raw")
            defer { writer.close() }
            try writer.finalize()
        } catch {
            throw BackupError(.invalidRequest, "cannot create the overlay \(path): \(error.message)")
        }
    }

    /// Lets QEMU, running as `owner`, reach `files` (the overlays and the export's socket) and no one else: they
    /// become its own (still 0600), and the folder lets its group in to reach them, not to list it (0710).
    private static func grant(_ owner: QemuProcessOwner, folder: String, files: [String]) throws(BackupError) {
        do {
            for file in files {
                try FileManager.default.setAttributes(
                    [.ownerAccountID: owner.uid, .groupOwnerAccountID: owner.gid], ofItemAtPath: file)
            }
            try FileManager.default.setAttributes(
                [.groupOwnerAccountID: owner.gid, .posixPermissions: 0o710], ofItemAtPath: folder)
        } catch {
            throw BackupError(
                .invalidRequest,
                "cannot give QEMU's user \(owner.uid):\(owner.gid) its overlays and export in \(folder): \(error.localizedDescription)"
            )
        }
    }

    static func save(_ state: LiveRestoreState, in folder: String) throws(BackupError) {
        let path = folder + "/" + LiveRestoreState.fileName
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(state).write(to: URL(fileURLWithPath: path), options: .atomic)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        } catch {
            throw BackupError(.invalidRequest, "cannot write \(path): \(error.localizedDescription)")
        }
    }

    /// What a failed start undoes: the serving process, the files it made, and the folder when it made it.
    private struct Cleanup {
        var folder: String?
        var files: [String]
        var serverPID: Int32?

        func undo() {
            if let serverPID { DetachedProcess.terminate(serverPID) }
            LocalPaths.remove(files + (folder.map { [$0 + "/" + LiveRestore.logName, $0] } ?? []))
        }
    }
}
