import ArgumentParser

/// The `pullback` command line: argument parsing and output only; the work is done by the library targets.
public struct Pullback: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "pullback",
        abstract: "Incremental, pull-mode backups of libvirt/QEMU disks over NBD.",
        version: "0.1.0",
        subcommands: [
            InitCommand.self, BackupCommand.self, ListCommand.self, RestoreCommand.self, VerifyCommand.self,
            DigestCommand.self, CopyCommand.self, ImageInfoCommand.self, ServeCommand.self, PruneCommand.self,
            CheckpointsCommand.self, SyncCommand.self, MountCommand.self, UnmountCommand.self, ProbeCommand.self,
        ]
    )

    public init() {}
}
