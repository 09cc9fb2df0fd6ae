import ArgumentParser
import Backup
import Engine
import Foundation
import Repository

/// `pullback backup`: one consistent, point-in-time backup of a domain's disks into a repository; of several domains,
/// or of every domain of the host, with one point each (``runSeveral(_:log:)``).
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract:
            "Back up libvirt domains' disks (pull mode) into a repository, in full or incrementally: one domain, several, or --all."
    )

    @Argument(help: "The libvirt domains' names (one or more; none with --all).", completion: .libvirtDomain)
    var domains: [String] = []

    @Flag(help: "Back up every domain the connection lists, running or shut off.")
    var all = false

    @Option(
        name: .customLong("exclude-domain"),
        help: ArgumentHelp("With --all: leave this domain out (repeatable).", valueName: "NAME"))
    var excludedDomains: [String] = []

    @Option(
        help: ArgumentHelp(
            "Back up N domains at a time (default: \(HostBackup.defaultParallelism) on this host).", valueName: "N"))
    var parallel: Int?

    @OptionGroup var repository: RepositoryOption

    @Flag(
        name: .customLong("init"),
        help: "Create the repository first if the path is new or an empty folder (as `pullback init` does).")
    var initialize = false

    @Flag(help: "With --init: make the new repository encrypted, under the key of --key-file (or $PULLBACK_KEY_FILE).")
    var encrypt = false

    @Option(help: "auto (default): incremental when the chain can continue, else full; full; or incremental.")
    var level: BackupLevel = .auto

    @Option(help: "With --level auto: start a new chain with a full once a chain holds N points.")
    var maxChain = BackupRequest.defaultMaximumChain

    @Flag(
        help:
            "Read each disk in full while its export is open and prove the point equal to it, copying the blocks a wrong dirty bitmap missed (costs one full read of every disk)."
    )
    var checkSource = false

    @Option(
        help: ArgumentHelp("Check the source as --check-source does at every Nth backup of the domain.", valueName: "N")
    )
    var checkSourceEvery: Int?

    @Option(name: .customLong("disk"), help: "Back up only this disk target (repeatable).")
    var disks: [String] = []

    @Option(name: .customLong("exclude"), help: "Leave this disk target out (repeatable).")
    var excluded: [String] = []

    @Option(
        help:
            "Raw-format disks (no dirty bitmap): full: copy each whole at every point; skip: leave them out on purpose. Unset, they are left out and the backup exits 3."
    )
    var rawDisks: RawDiskPolicy?

    @OptionGroup var libvirt: LibvirtOption

    @OptionGroup var remote: RemoteExportOptions

    @Option(help: "Folder for QEMU's scratch images during the backup.", completion: .directory)
    var scratchDir: String?

    @OptionGroup var compression: CompressionOption

    @OptionGroup var connections: ConnectionsOption

    @OptionGroup var faults: FaultOptions

    @OptionGroup var rateLimit: RateLimitOption

    @Flag(help: "Print a JSON summary on stdout when done.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    @OptionGroup var progress: ProgressOption

    @OptionGroup var metrics: MetricsFileOption

    func validate() throws {
        try validateDomains()
        if let every = checkSourceEvery, every < 1 {
            throw ValidationError("--check-source-every needs a number of backups of at least 1, e.g. 7")
        }
        if encrypt, !initialize {
            throw ValidationError(
                "--encrypt makes a new repository: give it with --init, or use `pullback init --encrypt`")
        }
        if encrypt, repository.keyFile.given == nil {
            throw ValidationError("--encrypt needs a key: give --key-file FILE or set PULLBACK_KEY_FILE")
        }
    }

    func run() async throws {
        let log = StderrLog(logging)
        guard !all, domains.count == 1 else {
            if initialize { try makeRepository(log: log) }
            return try await runSeveral(makeRequest(domain: "", progress: nil), log: log)
        }
        let (counters, showing) = (JobProgress(), progress.isShown)
        let request = makeRequest(domain: domains[0], progress: showing ? counters : nil)
        // Notes go to stderr (see StderrLog); stdout carries only the summary.
        if initialize { try makeRepository(log: log) }
        let logger = log.logger(label: "pullback.backup")
        let outcome = try await metrics.recording(domain: domains[0], repository: repository.path, log: log) {
            try await Interruptible.run(logging: log) {
                [request] () async throws(BackupError) -> BackupOutcome in
                try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                    try await BackupRun.run(request, logger: logger)
                }
            }
        }
        print(json ? try JSONOutput.line(outcome) : Self.summaryLine(outcome))
        // The point is kept, but a script must not take it for a whole backup: the warnings above name the disks.
        if !outcome.missing.isEmpty { throw ExitCode(Self.partialExitCode) }
    }

    /// The request of the command's options for `domain`.
    private func makeRequest(domain: String, progress: JobProgress?) -> BackupRequest {
        var request = BackupRequest(
            domain: domain, repository: repository.path, level: level, disks: disks, excluded: excluded,
            rawDisks: rawDisks, connectURI: libvirt.uri, scratchDirectory: scratchDir, connections: connections.count,
            progress: progress)
        (request.retry, request.stallTimeout) = (faults.retry, faults.stall)
        request.remoteExport = remote.export
        request.maximumChain = maxChain
        request.compression = compression.compress
        request.sourceCheckInterval = checkSource ? 1 : checkSourceEvery
        request.rateLimiter = rateLimit.makeLimiter()
        return request
    }

    /// The line a backup prints for its point: level, point, domain, bytes read per disk, time, retries.
    static func summaryLine(_ outcome: BackupOutcome) -> String {
        let copied = (outcome.disks.map { "\($0.target) \(ByteCount($0.bytesRead))" } + (outcome.state ?? []))
            .joined(separator: ", ")
        let retries = outcome.disks.reduce(0) { $0 + $1.retries }
        return Terminal.escaped(
            "\(outcome.level) backup \(outcome.point) of \(outcome.domain): \(copied), "
                + String(format: "%.2f s", outcome.seconds) + RetryCount.phrase(retries))
    }

    /// The exit status of a backup that made a point without some of the domain's disks (``BackupOutcome/missing``).
    static let partialExitCode: Int32 = 3

    /// `--init`: the repository made unless it is there. Not for `--level incremental`, which needs an earlier point:
    /// a new repository would refuse it and be left behind empty.
    private func makeRepository(log: StderrLog) throws {
        do throws(RepositoryError) {
            if level == .incremental {
                _ = try BackupRepository.open(root: repository.path)
            } else {
                let opened = try BackupRepository.openOrCreate(
                    root: repository.path, keyFile: encrypt ? repository.keyFile.given : nil)
                if encrypt, !opened.isEncrypted {
                    throw RepositoryError(
                        .alreadyARepository,
                        "\(repository.path) is a plain repository already, and --encrypt does not encrypt one: back up into a new repository made with --encrypt (pullback sync copies points into it)"
                    )
                }
            }
        } catch {
            log.fail(error.message)
            throw ExitCode.failure
        }
    }
}

extension BackupLevel: ExpressibleByArgument {}
extension RawDiskPolicy: ExpressibleByArgument {}
