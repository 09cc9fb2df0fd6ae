import ArgumentParser
import Backup
import Engine
import Foundation

extension RestoreCommand {
    /// `restore --live`: the new domain started on the point's exports, then its disks pulled in while it runs.
    func runLive() async throws {
        let started = ContinuousClock.now
        let folder = to
        var secondsToRunning: Double?
        var state: LiveRestoreState
        if resume {
            state = try await Interruptible.run { () async throws(BackupError) -> LiveRestoreState in
                try LiveRestore.state(in: folder)
            } describe: {
                $0.message
            }
            // This run's choice, for the copies it starts (one still running keeps its rate).
            state.pullBytesPerSecond = pullLimit?.bytesPerSecond ?? 0
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
                "started \(state.newName) on point \(state.point) of \(state.domain), served from process \(state.serverPID); restoring \(state.disks.joined(separator: ", ")) into \(folder) while it runs"
            )
            (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data((line + "\n").utf8))
            secondsToRunning = (ContinuousClock.now - started).inSeconds
        }
        let (showing, uri, pulling) = (progress.isShown, libvirt.uri, state)
        try await Interruptible.run { () async throws(BackupError) in
            let counters = JobProgress()
            try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await LiveRestore.pull(
                    pulling, folder: folder, connectURI: uri, progress: showing ? counters : nil)
            }
        } describe: {
            $0.message
        }
        if json {
            let summary = LiveSummary(
                domain: state.newName, point: state.point, disks: state.disks, folder: folder,
                serverPID: state.serverPID, secondsToRunning: secondsToRunning,
                seconds: (ContinuousClock.now - started).inSeconds)
            print(try JSONOutput.line(summary))
            return
        }
        print(
            Terminal.escaped(
                "\(state.newName): \(state.disks.joined(separator: ", ")) copied into their images in \(folder), the domain switched onto them; the export has ended"
            ))
    }

    /// What `restore --live --json` prints once every disk is pulled.
    struct LiveSummary: Encodable {
        var domain: String
        var point: String
        var disks: [String]
        var folder: String
        var serverPID: Int32
        /// From the command's start to the running domain; absent for `--resume`.
        var secondsToRunning: Double?
        var seconds: Double

        enum CodingKeys: String, CodingKey {
            case domain, point, disks, folder, seconds
            case serverPID = "server_pid"
            case secondsToRunning = "seconds_to_running"
        }
    }

    /// This program's own path, to start its server from.
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
