import ArgumentParser
import Backup
import Foundation
import Repository

/// `pullback prune`: a domain's older points removed, the oldest kept one made full when it was incremental.
struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove a domain's older backup points, keeping the newest ones by count or by age.",
        discussion: """
            The newest point is always kept. When the oldest kept point is incremental, its chain is first merged \
            into standalone images (a synthetic full point), without the domain. The removed points' checkpoints are \
            deleted from libvirt when the domain can be reached. A prune killed at any moment leaves every listed \
            point restorable; the next prune or backup finishes or discards its work.
            """
    )

    @OptionGroup var repository: RepositoryOption

    @OptionGroup var bucketRetries: BucketRetryOption

    @Argument(help: "The domain whose points to prune.", completion: .repositoryDomain)
    var domain: String

    @Option(help: "Keep the N newest points (N at least 1).")
    var keep: Int?

    @Option(help: "Keep the points started within this long before now: a number and s, m, h, d or w (7d, 12h, 30m).")
    var keepWithin: String?

    @Flag(help: "Say what would be kept, merged and removed, and change nothing.")
    var dryRun = false

    @Flag(help: "Print a JSON summary on stdout when done.")
    var json = false

    @OptionGroup var libvirt: LibvirtOption

    @OptionGroup var logging: LoggingOptions

    /// Bad input is one error line (not the usage text), exit 64, before anything is read or touched.
    func validate() throws {
        guard (keep == nil) != (keepWithin == nil) else {
            throw Self.refuse("give one of --keep N and --keep-within DURATION")
        }
        if let keep, keep < 1 { throw Self.refuse("--keep must be at least 1: the newest point is always kept") }
        if let keepWithin, RetentionRule.seconds(in: keepWithin) == nil {
            throw Self.refuse(
                "--keep-within needs a whole number and a unit s, m, h, d or w, as 7d, 12h or 30m (more than zero, at most 100 years), not \(RepositoryNames.quoted(keepWithin))"
            )
        }
    }

    private static func refuse(_ message: String) -> ExitCode {
        Terminal.printError(message)
        return .validationFailure
    }

    func run() async throws {
        let rule: RetentionRule =
            if let keep { .newest(keep) } else { .within(seconds: RetentionRule.seconds(in: keepWithin ?? "") ?? 1) }
        let request = PruneRequest(
            domain: domain, repository: repository.path, rule: rule, dryRun: dryRun, connectURI: libvirt.uri)
        let log = StderrLog(logging)
        let logger = log.logger(label: "pullback.prune")
        let outcome = try await Interruptible.run(logging: log) { () async throws(BackupError) -> PruneOutcome in
            try await PointPruning.run(request, logger: logger)
        }
        if json {
            print(try JSONOutput.line(outcome))
            return
        }
        let (would, merged) = (outcome.dryRun ? "would " : "", Set(outcome.merged))
        for id in outcome.kept {
            print(
                Terminal.escaped("\(would)keep    \(id)" + (merged.contains(id) ? "  (merged into a full point)" : "")))
        }
        for id in outcome.removed { print(Terminal.escaped("\(would)remove  \(id)")) }
        let summary =
            "\(outcome.dryRun ? "dry run, nothing changed: " : "")\(outcome.domain): \(outcome.kept.count) kept, "
            + "\(outcome.merged.count) merged, \(outcome.removed.count) removed, "
            + "\(ByteCount(outcome.bytesFreed.magnitude)) "
            + (outcome.bytesFreed < 0 ? "more taken (the merged images outweigh what was removed)" : "freed")
        print(Terminal.escaped(summary))
    }
}
