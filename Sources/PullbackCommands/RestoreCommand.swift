import ArgumentParser
import Backup
import Engine
import Foundation
import Repository

/// `pullback restore`: disks of a backup point as standalone images.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore disks of a backup point as standalone sparse images.")

    @OptionGroup var selection: PointSelection

    @Option(name: .customLong("disk"), help: "Restore only this disk target (repeatable; default: every disk).")
    var disks: [String] = []

    @Option(help: "The folder to write the images into (created if missing).")
    var to: String

    @Option(help: "Image format: qcow2 or raw.")
    var format: TargetFormat = .qcow2

    @Option(help: "Define a new domain NAME from the point's saved XML, using the restored disks.")
    var define: String?

    @OptionGroup var libvirt: LibvirtOption

    @OptionGroup var progress: ProgressOption

    func validate() throws {
        if define != nil, let uri = libvirt.uri, let host = RemoteExport.remoteHost(of: uri) {
            // The host is percent-decoded from the URI, so it may hold any control; ArgumentParser prints it raw.
            throw ValidationError(
                "--define needs a local --connect URI: the restored images are files on this host, not on \(Terminal.escaped(host)); copy them there and define the domain on it"
            )
        }
    }

    func run() async throws {
        let (repo, domain, at) = (selection.repository.path, selection.domain, selection.at)
        let point: BackupPoint
        let savedXML: String
        do {
            point = try BackupRepository(root: repo).point(at, of: domain)
            // Read before anything is written, and confined like every repository file (no link, FIFO or device).
            savedXML = define == nil ? "" : try point.savedFile("domain.xml") ?? ""
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
        let (targets, folder, format, showing) = (disks, to, format, progress.isShown)
        let restored = try await Interruptible.run { () async throws(BackupError) -> [PointRestore.Restored] in
            let counters = JobProgress()
            return try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await PointRestore.run(
                    point, disks: targets, to: folder, format: format, progress: showing ? counters : nil)
            }
        } describe: {
            $0.message
        }
        var images: [String: String] = [:]
        for disk in restored {
            print(
                Terminal.escaped(
                    "\(disk.target): point \(point.id) restored to \(disk.path) (\(ByteCount(disk.bytesWritten)) of data)"
                ))
            images[disk.target] = URL(fileURLWithPath: disk.path).standardizedFileURL.path
        }
        if let define {
            let (saved, restored) = (savedXML, images)
            let defined = try await Interruptible.run { () async throws(BackupError) -> RestoredDomain.Defined in
                try await RestoredDomain.define(
                    from: saved, name: define, images: restored, format: format.rawValue, connectURI: libvirt.uri)
            } describe: {
                $0.message
            }
            if !defined.dropped.isEmpty {
                Terminal.writeError(
                    Terminal.escaped(
                        "the new domain leaves out of the saved XML what it must not share with the host or the original: "
                            + defined.dropped.joined(separator: ", ")) + "\n")
            }
            print(Terminal.escaped("defined domain \(defined.name) with the restored disks"))
        }
    }
}
