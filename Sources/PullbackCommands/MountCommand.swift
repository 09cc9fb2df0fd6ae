import ArgumentParser
import Backup
import Foundation
import Repository

/// `pullback mount`: the disks of a point (or images) as read-only files, for file-level restore.
struct MountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mount",
        abstract: "Show each disk of a point as a read-only file MOUNTPOINT/<target> until unmounted.",
        discussion: """
            The point is served over NBD on a private socket and each disk mounted with nbdfuse (Debian's \
            libnbd-bin). The command stays until `pullback unmount MOUNTPOINT` or Ctrl-C, then leaves MOUNTPOINT empty.
            """
    )

    @Option(name: .customLong("repo"), help: "The repository holding the point.", completion: .directory)
    var repository: String?

    @Argument(
        help: ArgumentHelp(
            "With --repo: the domain whose point to mount, then the mountpoint; with --image: the mountpoint (an empty folder).",
            valueName: "domain> <mountpoint"))
    var positional: [String] = []

    @Option(help: "The point to mount: its id, or latest.", completion: .point)
    var at = "latest"

    @Option(name: .customLong("image"), help: "Mount this image (and its backing chain) instead (repeatable).")
    var images: [String] = []

    @OptionGroup var bucketRetries: BucketRetryOption
    @OptionGroup var plainHTTP: PlainHTTPOption
    @OptionGroup var keyFile: KeyFileOption

    func validate() throws {
        if (repository == nil) == images.isEmpty {
            throw ValidationError("give either --repo REPO DOMAIN MOUNTPOINT or --image FILE MOUNTPOINT")
        }
        if positional.count != (repository == nil ? 1 : 2) {
            throw ValidationError(
                repository == nil
                    ? "--image needs one MOUNTPOINT after it"
                    : "--repo needs the DOMAIN whose point to mount and a MOUNTPOINT")
        }
    }

    func run() async throws {
        let mountpoint = positional[positional.count - 1]
        let exports =
            try repository.map { try ServeCommand.pointExports(repository: $0, domain: positional[0], at: at) }
            ?? ServeCommand.imageExports(images)
        try await Interruptible.run { () async throws(BackupError) in
            try await PointMount.run(exports, at: mountpoint) { files in
                FileHandle.standardOutput.write(Data(files.map { $0 + "\n" }.joined().utf8))
            }
        } describe: {
            $0.message
        }
    }
}

/// `pullback unmount`: ends a `pullback mount`.
struct UnmountCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unmount", abstract: "Unmount what `pullback mount` shows in MOUNTPOINT; that command then ends.")

    @Argument(help: "The folder given to pullback mount.", completion: .directory)
    var mountpoint: String

    func run() throws {
        do throws(BackupError) { try PointMount.unmount(mountpoint) } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
    }
}
