import ArgumentParser
import Backup
import Foundation

/// `pullback checkpoints`: the checkpoints Pullback made on a domain, each with its repository and whether that
/// repository still holds a point for it; with `--remove`, one repository's deleted.
struct CheckpointsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoints",
        abstract: "List the checkpoints Pullback made on a domain and their repositories, or remove one repository's.",
        discussion: """
            Each checkpoint is a dirty bitmap that QEMU updates on every guest write. Backups and prunes remove \
            their repository's stale ones, but a repository deleted or moved away leaves its checkpoints behind. The \
            list shows each checkpoint's repository (the path recorded in the checkpoint's description) and whether \
            it still holds a point made with it. --remove --repo DIR removes the checkpoints of that repository that \
            it holds no point for (with --all, every one: its next backup is then a full), never those a copy of it \
            at another folder made; --remove --tag ID removes every checkpoint of a repository that was deleted, and \
            without --all none when one's repository is still there, unknown or unreadable (a repository moved or \
            unmounted makes a full backup next). A shut-off domain is started paused for the removal and shut off \
            again.
            """
    )

    @Argument(help: "The domain whose checkpoints to list or remove.", completion: .libvirtDomain)
    var domain: String

    @Option(
        name: .customLong("repo"),
        help: "A repository: with --remove, whose checkpoints; else its checkpoints are checked against it.",
        completion: .directory)
    var repository: String?

    @OptionGroup var bucketRetries: BucketRetryOption
    @OptionGroup var plainHTTP: PlainHTTPOption

    @Option(help: "With --remove: the tag of a repository that is gone (the 8 hex digits of pullback-TAG-...).")
    var tag: String?

    @Flag(help: "Remove the checkpoints of the repository given by --repo or --tag.")
    var remove = false

    @Flag(help: "With --remove: also those the repository holds points for (its next backup is then a full).")
    var all = false

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var libvirt: LibvirtOption

    @OptionGroup var logging: LoggingOptions

    /// Bad input is one error line (not the usage text), exit 64, before libvirt is reached.
    func validate() throws {
        if remove, (repository == nil) == (tag == nil) {
            throw Self.refuse("--remove needs one of --repo DIR and --tag ID: whose checkpoints to remove")
        }
        if !remove, tag != nil {
            throw Self.refuse("--tag says whose checkpoints --remove removes; leave it out to list them all")
        }
        if !remove, all { throw Self.refuse("--all goes with --remove") }
    }

    private static func refuse(_ message: String) -> ExitCode {
        Terminal.printError(message)
        return .validationFailure
    }

    func run() async throws {
        let log = StderrLog(logging)
        if remove {
            try await removeCheckpoints(log)
        } else {
            try await listCheckpoints(log)
        }
    }

    private func listCheckpoints(_ log: StderrLog) async throws {
        let (domain, uri, repository) = (self.domain, libvirt.uri, self.repository)
        let report = try await Interruptible.run(logging: log) { () async throws(BackupError) in
            try await CheckpointListing.run(domain: domain, connectURI: uri, repository: repository)
        }
        if json {
            print(try JSONOutput.line(report))
            return
        }
        let width = report.checkpoints.map(\.name.count).max() ?? 0
        // Names, paths and details come from libvirt, and a description is anyone's text: every line is escaped.
        for checkpoint in report.checkpoints {
            let owner =
                "repository \(checkpoint.tag ?? "?")" + (checkpoint.repository.map { " at \($0)" } ?? "")
            let line =
                checkpoint.name.padding(toLength: width, withPad: " ", startingAt: 0)
                + "  holds a point: \(Self.holding(checkpoint))  \(owner)"
            print(Terminal.escaped(line))
        }
        print(Terminal.escaped(Self.summary(report)))
    }

    /// `yes`, `no`, or why not known, for a line of the list.
    private static func holding(_ checkpoint: ListedCheckpoint) -> String {
        let why = checkpoint.detail.map { ": \($0)" } ?? ""
        return switch checkpoint.holdsPoint {
        case .yes: "yes"
        case .no: "no"
        case .gone: "no (repository gone, moved or not mounted\(why); if it moved, use --repo NEWDIR to check it)"
        case .unreadable: "unknown (repository unreadable\(why))"
        case .unknown: "unknown (\(checkpoint.detail ?? "no repository path"))"
        }
    }

    /// The list's last line: how many of each kind, and how to remove the stale ones (each word of a suggested
    /// command quoted for a shell: a domain's name may hold anything).
    static func summary(_ report: CheckpointReport) -> String {
        let others = report.others > 0 ? " (\(Counted(report.others, "other checkpoint")) left out)" : ""
        guard !report.checkpoints.isEmpty else { return "\(report.domain) has no checkpoint made by pullback\(others)" }
        let counts: [(ListedCheckpoint.Holding, String)] = [
            (.yes, "held by a point"), (.no, "held by no point"), (.gone, "of a repository gone"),
            (.unreadable, "of a repository unreadable"), (.unknown, "of an unknown repository"),
        ]
        let parts = counts.compactMap { holding, what -> String? in
            let count = report.checkpoints.filter { $0.holdsPoint == holding }.count
            return count == 0 ? nil : "\(count) \(what)"
        }
        var line =
            "\(report.domain): \(Counted(report.checkpoints.count, "checkpoint")) made by pullback\(others), "
            + parts.joined(separator: ", ")
        let goneTags = Set(report.checkpoints.filter { $0.holdsPoint == .gone }.compactMap(\.tag)).sorted()
        for tag in goneTags {
            let command = CheckpointListing.command(report.domain, "--remove", "--tag", tag)
            line +=
                "; if repository \(tag) was deleted, not moved or unmounted, remove its checkpoints with `\(command)`"
        }
        if report.checkpoints.contains(where: { $0.holdsPoint == .no }) {
            let command = CheckpointListing.command(report.domain, "--remove", "--repo", "DIR")
            line += "; remove those held by no point with `\(command)`"
        }
        return line
    }

    private func removeCheckpoints(_ log: StderrLog) async throws {
        let owner: CheckpointRemovalRequest.Owner = repository.map { .repository($0) } ?? .tag(tag ?? "")
        let request = CheckpointRemovalRequest(domain: domain, owner: owner, all: all, connectURI: libvirt.uri)
        let logger = log.logger(label: "pullback.checkpoints")
        let outcome = try await Interruptible.run(logging: log) { () async throws(BackupError) in
            try await CheckpointRemoval.run(request, logger: logger)
        }
        if json {
            print(try JSONOutput.line(outcome))
        } else {
            for name in outcome.removed { print(Terminal.escaped("removed  \(name)")) }
            for name in outcome.kept {
                print(Terminal.escaped("kept     \(name)  (the repository holds a point made with it)"))
            }
            for held in outcome.heldElsewhere { print(Terminal.escaped("kept     \(held.name)  (\(held.why))")) }
            print(Terminal.escaped(Self.summary(outcome)))
        }
        guard outcome.failed.isEmpty else {
            let failures = outcome.failed.map { "\($0.name) (\($0.message))" }.joined(separator: "; ")
            Terminal.printError("libvirt did not delete \(Counted(outcome.failed.count, "checkpoint")): \(failures)")
            throw ExitCode.failure
        }
    }

    /// The removal's last line.
    static func summary(_ outcome: CheckpointRemovalOutcome) -> String {
        let whose = "repository \(outcome.tag)" + (outcome.repository.map { " (\($0))" } ?? "")
        var line =
            outcome.removed.isEmpty
            ? "\(outcome.domain): no checkpoint of \(whose) to remove"
            : "\(outcome.domain): removed \(Counted(outcome.removed.count, "checkpoint")) of \(whose)"
        if !outcome.kept.isEmpty {
            line += ", kept \(outcome.kept.count) that its points were made with (--all removes them too)"
        }
        if !outcome.heldElsewhere.isEmpty {
            let count = outcome.heldElsewhere.count
            line +=
                ", kept \(count) that another repository with its id (a copy) made, which only that one's --repo removes"
        }
        if outcome.nextBackupFull {
            line += "; its next backup of \(outcome.domain) will be a full"
        }
        return line
    }
}
