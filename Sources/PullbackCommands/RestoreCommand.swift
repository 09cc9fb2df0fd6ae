import ArgumentParser
import Engine
import Foundation
import Repository

/// `pullback restore`: disks of a backup point as standalone images.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore disks of a backup point as standalone sparse images.")

    @Option(help: "The repository folder.")
    var repo: String

    @Argument(help: "The domain whose point to restore.")
    var domain: String

    @Option(help: "The point id, or latest.")
    var at = "latest"

    @Option(name: .customLong("disk"), help: "Restore only this disk target (repeatable; default: every disk).")
    var disks: [String] = []

    @Option(help: "The folder to write the images into (created if missing).")
    var to: String

    @Option(help: "Image format: qcow2 or raw.")
    var format: TargetFormat = .qcow2

    func run() async throws {
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
                "point \(point.id) of \(domain) has no disk \(target); it has \(point.manifest.disks.map(\.target).joined(separator: ", "))")
            throw ExitCode.failure
        }
        try? FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
        for target in chosen {
            let image = point.imagePath(for: target)!
            let output = to + "/" + target + "." + format.rawValue
            let summary = try await Interruptible.run { () async throws(CopyError) -> CopySummary in
                try await ImageRestore.run(image: image, to: output, format: format)
            } describe: { $0.message }
            print("\(target): point \(point.id) restored to \(output) (\(ByteCount(summary.bytesWritten)) of data)")
        }
    }
}
