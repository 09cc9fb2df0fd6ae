import FileIO
import Foundation
import NBD
import Repository
import Server
import SystemPackage

/// `pullback mount`: each export (a point's disk, or an image) as a read-only file `MOUNTPOINT/<name>`, for
/// file-level restore with tools that open files (guestfish, a loop device). pullback serves the exports over NBD on
/// a private unix socket, and one nbdfuse per export (libnbd's FUSE client) mounts it: nbdfuse shows one file per
/// mount, so each is mounted on a hidden folder `MOUNTPOINT/.<name>` and `MOUNTPOINT/<name>` links to its file.
///
/// It lasts until every nbdfuse has ended (``unmount(_:)``, `pullback unmount`, or `umount` of its folders) or the
/// task is cancelled (Ctrl-C), and then leaves `MOUNTPOINT` as empty as it found it.
public enum PointMount {
    /// The FUSE client.
    static let nbdfuse = "/usr/bin/nbdfuse"

    /// Mounts `exports` under `mountpoint` (an empty folder) and returns once they are unmounted; `ready` is called
    /// with the files once they can be read.
    public static func run(
        _ exports: [ServedExport], at mountpoint: String, ready: @escaping @Sendable ([String]) -> Void
    ) async throws(BackupError) {
        let mountpoint = URL(fileURLWithPath: mountpoint).standardizedFileURL.path
        guard LocalPaths.isEmptyFolder(mountpoint) else {
            throw BackupError(
                .invalidRequest,
                "\(mountpoint) is not an empty folder: mount needs an empty folder to show the disks in")
        }
        guard FileManager.default.isExecutableFile(atPath: nbdfuse) else {
            throw BackupError(
                .invalidRequest, "\(nbdfuse) is missing: install Debian's libnbd-bin package, which has nbdfuse")
        }
        let runFolder: String
        do throws(RepositoryError) { runFolder = try RunFolder.make() } catch { throw BackupError(error) }
        defer { RunFolder.remove(runFolder) }
        let socket = runFolder + "/" + RunFolder.socketName
        let served = Task {
            try await NBDServer.serve(exports, socketPath: socket)
        }
        defer { served.cancel() }
        try await waitFor(socket, what: "the NBD server's socket")
        var clients: [Int32] = []
        var made: [String] = []
        defer { tidy(mountpoint, made: made, clients: clients) }
        for export in exports {
            let folder = mountpoint + "/." + export.name
            let file = folder + "/" + export.name
            do {
                try FileManager.default.createDirectory(
                    atPath: folder, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
                made.append(folder)
                let uri = NBDURI(.unix(socket: socket), requiresTLS: false, exportName: export.name).description
                clients.append(
                    try DetachedProcess.spawn(
                        nbdfuse, ["-r", file, uri], log: runFolder + "/nbdfuse-\(export.name).log"))
                try await waitFor(file, what: "nbdfuse's file for \(export.name)")
                try FileManager.default.createSymbolicLink(
                    atPath: mountpoint + "/" + export.name, withDestinationPath: "." + export.name + "/" + export.name)
                made.append(mountpoint + "/" + export.name)
            } catch let error as BackupError {
                throw error
            } catch {
                throw BackupError(.invalidRequest, "cannot mount \(export.name) under \(mountpoint): \(error)")
            }
        }
        ready(exports.map { mountpoint + "/" + $0.name })
        while clients.contains(where: DetachedProcess.isRunning), !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Unmounts what `pullback mount` mounted under `mountpoint`; the mount command then tidies up and ends.
    /// Throws when nothing is mounted there.
    public static func unmount(_ mountpoint: String) throws(BackupError) {
        let mountpoint = URL(fileURLWithPath: mountpoint).standardizedFileURL.path
        let mounted = DetachedProcess.mounts(under: mountpoint).filter {
            URL(fileURLWithPath: $0).lastPathComponent.hasPrefix(".")
        }
        guard !mounted.isEmpty else {
            throw BackupError(.invalidRequest, "nothing pullback mounted is under \(mountpoint)")
        }
        for folder in mounted {
            do throws(Errno) { try DetachedProcess.unmount(folder) } catch {
                throw BackupError(.invalidRequest, "cannot unmount \(folder): \(error)")
            }
        }
    }

    private static func waitFor(_ path: String, what: String) async throws(BackupError) {
        guard await LocalPaths.appears(path, within: 10) else {
            throw BackupError(.invalidRequest, "\(what) did not appear at \(path) within 10 s")
        }
    }

    /// Unmounts what is still mounted, waits for the nbdfuse processes, and removes the links and folders made.
    private static func tidy(_ mountpoint: String, made: [String], clients: [Int32]) {
        for folder in DetachedProcess.mounts(under: mountpoint) where made.contains(folder) {
            try? DetachedProcess.unmount(folder)
        }
        for client in clients { DetachedProcess.terminate(client) }
        LocalPaths.remove(made.reversed())
    }
}
