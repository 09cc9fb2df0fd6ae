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

    @OptionGroup var bucketRetries: BucketRetryOption

    @Option(name: .customLong("disk"), help: "Restore only this disk target (repeatable; default: every disk).")
    var disks: [String] = []

    @Option(help: "The folder to write the images into (created if missing).", completion: .directory)
    var to: String

    @Option(help: "Image format: qcow2 or raw.")
    var format: TargetFormat = .qcow2

    @OptionGroup var compression: CompressionOption

    @Option(help: "Define a new domain NAME from the point's saved XML, using the restored disks.")
    var define: String?

    @Flag(help: "Replace images already in the --to folder (each in one step, when every disk is written).")
    var overwrite = false

    @Flag(
        name: .customLong("no-verify"),
        help: "Skip checking each image of the chain against its recorded digest before restoring (faster).")
    var noVerify = false

    @Flag(
        help: ArgumentHelp(
            "Boot the point as the new domain --define NAME at once, and pull its disks into --to while it runs.",
            discussion:
                "The point is served over NBD by a process of its own; each disk starts on a qcow2 overlay in --to on its export. While the domain runs, each image is restored into --to/TARGET.qcow2, what the guest wrote meanwhile is copied into it, and the disk is switched onto it. The command waits until every disk is switched; Ctrl-C leaves the domain running on its exports, and --resume finishes."
        ))
    var live = false

    @Flag(help: "With --live: finish the live restore whose overlays are in --to (its command was stopped).")
    var resume = false

    @Option(
        help: ArgumentHelp(
            "With --live: let QEMU copy each disk from the export at most this many bytes per second, e.g. 50M.",
            discussion:
                "Without it each image is restored straight from the repository at full speed while the domain runs, and QEMU copies only what the guest wrote meanwhile."
        ))
    var pullLimit: ByteRate?

    @Flag(help: "With --live: print one JSON object when every disk is pulled (the start is then said on stderr).")
    var json = false

    @OptionGroup var libvirt: LibvirtOption

    @OptionGroup var progress: ProgressOption

    @OptionGroup var rateLimit: RateLimitOption

    func validate() throws {
        if live {
            if define == nil, !resume {
                throw ValidationError("--live boots a new domain: give its name with --define NAME")
            }
            if format != .qcow2 || compression.compress != nil || overwrite || noVerify {
                throw ValidationError(
                    "--live makes qcow2 overlays in a new or empty --to; --format, --compress, --overwrite and --no-verify do not apply"
                )
            }
            if rateLimit.rate != nil {
                throw ValidationError("--limit-rate does not apply to --live: limit its pull with --pull-limit")
            }
        } else if resume || pullLimit != nil || json {
            throw ValidationError("--resume, --pull-limit and --json go with --live")
        }
        if let compress = compression.compress, compress != .none, format != .qcow2 {
            throw ValidationError("--compress needs --format qcow2; a raw image cannot be compressed")
        }
        if define != nil || live, let uri = libvirt.uri, let host = RemoteExport.remoteHost(of: uri) {
            // The host is percent-decoded from the URI, so it may hold any control; ArgumentParser prints it raw.
            throw ValidationError(
                "--define needs a local --connect URI: the restored images are files on this host, not on \(Terminal.escaped(host)); copy them there and define the domain on it"
            )
        }
    }

    func run() async throws {
        if live { return try await runLive() }
        let (point, savedXML, state) = try readPoint()
        let plan: PointRestore.Plan
        do {
            plan = try PointRestore.plan(
                point, disks: disks, to: to, format: format, overwrite: overwrite,
                compression: compression.compress ?? .none)
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
        if let lacked = PointCoverage.lackedDisks(of: point), !lacked.isEmpty {
            // A point made without some of the domain's disks restores without them: said before anything is read.
            Terminal.writeError(
                Terminal.escaped(
                    "restoring \(plan.targets.joined(separator: ", ")) of point \(point.id); the point does not have "
                        + "the domain's \(lacked.joined(separator: ", ")) (not backed up)") + "\n")
        }
        let stateFolder = Self.absolute(to)
        if !overwrite, let there = state.existing(in: stateFolder, withTPM: define == nil).first {
            Terminal.printError("\(there) exists; restore with --overwrite to replace it, or choose another --to")
            throw ExitCode.failure
        }
        // Checked before any byte is read: a name that is taken would otherwise fail the restore at its very end.
        var pending: PendingDefinition?
        if let define {
            let (saved, images, uri) = (savedXML, plan.images.mapValues(Self.absolute), libvirt.uri)
            let nvram = stateFolder + "/" + RestoredState.nvramName
            pending = try await Interruptible.run { () async throws(BackupError) -> PendingDefinition in
                try await PendingDefinition.prepare(
                    from: saved, name: define, images: images, format: plan.format.rawValue, connectURI: uri,
                    state: state, nvram: nvram)
            } describe: {
                $0.message
            }
        }
        let restored: [PointRestore.Restored]
        do {
            restored = try await restore(plan)
        } catch {
            await pending?.close()
            throw error
        }
        for disk in restored {
            print(
                Terminal.escaped(
                    "\(disk.target): point \(point.id) restored to \(disk.path) (\(ByteCount(disk.bytesWritten)) of data)"
                ))
        }
        do {
            try write(state, of: point, into: stateFolder)
        } catch {
            await pending?.close()
            throw error
        }
        if let pending { try await Self.define(pending) }
    }

    /// Writes the point's domain state beside the images (the TPM's files too when no domain is defined, which gets
    /// them in libvirt's folder instead), a line each.
    private func write(_ state: RestoredState, of point: BackupPoint, into folder: String) throws {
        do throws(BackupError) {
            for file in try state.write(into: folder, withTPM: define == nil, replacing: overwrite) {
                print(Terminal.escaped("\(file.kind): point \(point.id) restored to \(file.path)"))
            }
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
    }

    /// The point asked for, with `--define` its saved domain XML, and the domain state to put back (none when only
    /// some disks are restored without --define); says what is wrong and fails when any cannot be read.
    private func readPoint() throws -> (point: BackupPoint, savedXML: String, state: RestoredState) {
        do {
            let point = try BackupRepository(root: selection.repository.path).point(selection.at, of: selection.domain)
            // Read before anything is written, and confined like every repository file (no link, FIFO or device).
            let saved = define == nil ? "" : try point.savedFile("domain.xml") ?? ""
            let state = define == nil && !disks.isEmpty ? RestoredState.none : try RestoredState.read(from: point)
            return (point, saved, state)
        } catch let error as RepositoryError {
            Terminal.printError(error.message)
            throw ExitCode.failure
        } catch let error as BackupError {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
    }

    /// Checks the plan's chains unless `--no-verify` (images the write cannot check as it reads, first), then writes its
    /// images, each step with its progress bar.
    private func restore(_ plan: PointRestore.Plan) async throws -> [PointRestore.Restored] {
        let (verifying, showing) = (!noVerify, progress.isShown)
        let limiter = rateLimit.makeLimiter()
        return try await Interruptible.run { () async throws(BackupError) -> [PointRestore.Restored] in
            if verifying {
                let reading = JobProgress()
                try await ProgressBar.while(showing: showing, reading) { () async throws(BackupError) in
                    try await PointRestore.check(plan, progress: showing ? reading : nil, rateLimiter: limiter)
                }
            }
            let counters = JobProgress()
            return try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await PointRestore.write(
                    plan, verifying: verifying, progress: showing ? counters : nil, rateLimiter: limiter)
            }
        } describe: {
            $0.message
        }
    }

    /// Defines the new domain over the restored images, and says what it left out of the saved XML.
    private static func define(_ pending: PendingDefinition) async throws {
        let defined = try await Interruptible.run { () async throws(BackupError) -> RestoredDomain.Defined in
            try await pending.define()
        } describe: {
            $0.message
        }
        if !defined.dropped.isEmpty {
            Terminal.writeError(
                Terminal.escaped(
                    "the new domain leaves out of the saved XML what it must not share with the host or the original: "
                        + defined.dropped.joined(separator: ", ")) + "\n")
        }
        let state = defined.state.isEmpty ? "" : ", " + defined.state.joined(separator: " and ")
        print(Terminal.escaped("defined domain \(defined.name) with the restored disks\(state)"))
    }

    /// The path a domain's XML names an image by: absolute, as libvirt needs.
    private static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
