import ArgumentParser
import Backup
import Engine
import Foundation

extension RestoreCommand {
    /// `restore --live`: the new domain started on the point's exports, then its disks pulled in while it runs.
    func runLive() async throws {
        let folder = to
        let state: LiveRestoreState
        if resume {
            state = try await Interruptible.run { () async throws(BackupError) -> LiveRestoreState in
                try LiveRestore.state(in: folder)
            } describe: {
                $0.message
            }
        } else {
            let request = LiveRestoreRequest(
                repository: selection.repository.path, domain: selection.domain, point: selection.at, disks: disks,
                newName: define ?? "", folder: folder, connectURI: libvirt.uri,
                serverExecutable: Self.executablePath(), keyFile: selection.repository.keyFile.given,
                pullBytesPerSecond: pullLimit?.bytesPerSecond ?? 0)
            state = try await Interruptible.run { () async throws(BackupError) -> LiveRestoreState in
                try await LiveRestore.start(request)
            } describe: {
                $0.message
            }
            // Written at once, not buffered: a script waits for this line to know the domain runs.
            let line = Terminal.escaped(
                "started \(state.newName) on point \(state.point) of \(state.domain), served from process \(state.serverPID); pulling \(state.disks.joined(separator: ", ")) into \(folder)"
            )
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        let (showing, uri) = (progress.isShown, libvirt.uri)
        try await Interruptible.run { () async throws(BackupError) in
            let counters = JobProgress()
            try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await LiveRestore.pull(state, folder: folder, connectURI: uri, progress: showing ? counters : nil)
            }
        } describe: {
            $0.message
        }
        print(
            Terminal.escaped(
                "\(state.newName): \(state.disks.joined(separator: ", ")) pulled into \(folder); the overlays stand alone and the export has ended"
            ))
    }

    /// This program's own path, to start its server from.
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
