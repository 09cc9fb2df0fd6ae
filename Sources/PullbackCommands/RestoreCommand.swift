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

    func run() async throws {
        let (repo, domain, at) = (selection.repository.path, selection.domain, selection.at)
        let repository = BackupRepository(root: repo)
        let point: BackupPoint
        do {
            point = try repository.point(at, of: domain)
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
        let chosen = disks.isEmpty ? point.manifest.disks.map(\.target) : disks
        for target in chosen where point.imagePath(for: target) == nil {
            Terminal.printError(
                "point \(point.id) of \(domain) has no disk \(target); it has \(point.manifest.disks.map(\.target).joined(separator: ", "))"
            )
            throw ExitCode.failure
        }
        try? FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
        var images: [String: String] = [:]
        for target in chosen {
            let image = point.imagePath(for: target)!
            let output = to + "/" + target + "." + format.rawValue
            let summary = try await Interruptible.run { () async throws(CopyError) -> CopySummary in
                try await ImageRestore.run(image: image, to: output, format: format)
            } describe: {
                $0.message
            }
            print("\(target): point \(point.id) restored to \(output) (\(ByteCount(summary.bytesWritten)) of data)")
            images[target] = URL(fileURLWithPath: output).standardizedFileURL.path
        }
        if let define {
            let saved = (try? String(contentsOfFile: point.folder + "/domain.xml", encoding: .utf8)) ?? ""
            let restored = images
            let name = try await Interruptible.run { () async throws(BackupError) -> String in
                try await RestoredDomain.define(
                    from: saved, name: define, images: restored, format: format.rawValue, connectURI: libvirt.uri)
            } describe: {
                $0.message
            }
            print("defined domain \(name) with the restored disks")
        }
    }
}
