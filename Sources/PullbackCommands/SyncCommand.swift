import ArgumentParser
import Backup
import Engine
import Foundation
import Repository

/// `pullback sync`: the committed points one repository has and another lacks, copied into it and checked on the way.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Copy the backup points one repository has and another lacks, checking each on the way.",
        discussion: """
            Points are copied oldest first, each image checked against the digest its manifest recorded; a damaged \
            point is named and not copied, nor are the points based on it, and the exit status is then non-zero. \
            Only points the target lacks move. A killed sync leaves nothing listed; the next run redoes that point.
            """
    )

    @Option(help: "The repository to copy points from.", completion: .directory)
    var from: String

    @Option(help: "The repository to copy points into.", completion: .directory)
    var to: String

    @OptionGroup var bucketRetries: BucketRetryOption
    @OptionGroup var plainHTTP: PlainHTTPOption
    @OptionGroup var keyFile: KeyFileOption

    @Option(
        name: .customLong("to-key-file"),
        help: ArgumentHelp(
            "The key of --to, when --to is encrypted (under another key than --key-file's): with --init, a new --to is made encrypted under it.",
            valueName: "file"),
        completion: .file())
    var targetKeyFile: String?

    @Argument(help: "Only these domains' points (default: every domain of --from).", completion: .repositoryDomain)
    var domains: [String] = []

    @Option(help: "latest: each domain's newest point and the part of its chain --to lacks; all: every point.")
    var points: SyncRequest.Scope = .all

    @Flag(
        name: .customLong("init"),
        help: "Create --to first if the path is new or an empty folder (as `pullback init` does).")
    var createsTarget = false

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @OptionGroup var progress: ProgressOption

    @OptionGroup var rateLimit: RateLimitOption

    func validate() throws {
        if let targetKeyFile { RepositoryLocation.useKeyFile(targetKeyFile, for: to) }
    }

    func run() async throws {
        var asked = SyncRequest(
            source: BackupRepository(root: from), target: BackupRepository(root: to), domains: domains, scope: points,
            createsTarget: createsTarget, targetKeyFile: targetKeyFile)
        asked.rateLimiter = rateLimit.makeLimiter()
        let request = asked
        let showing = progress.isShown
        let report = try await Interruptible.run { () async throws(BackupError) -> SyncReport in
            let counters = JobProgress()
            return try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await PointSync.sync(request, progress: showing ? counters : nil)
            }
        } describe: {
            $0.message
        }
        if json {
            print(try JSONOutput.line(report))
        } else {
            for domain in report.domains {
                for id in domain.copied { print(Terminal.escaped("\(domain.domain)  \(id)  copied")) }
            }
            let present = report.domains.reduce(0) { $0 + $1.present }
            print(
                "\(Counted(report.copiedCount, "point")) copied (\(ByteCount(report.bytes))), \(present) already in \(Terminal.escaped(report.target)), "
                    + "\(Counted(report.domains.count, "domain"))")
        }
        guard report.isComplete else {
            let missed = report.domains.flatMap { domain in
                (domain.failed + domain.skipped).map { "\(domain.domain) \($0.point): \($0.message)" }
            }
            let unread = report.domains.compactMap { domain in domain.problem.map { "\(domain.domain): \($0)" } }
            var parts: [String] = []
            if !missed.isEmpty {
                parts.append("\(Counted(missed.count, "point")) not copied: " + missed.joined(separator: "; "))
            }
            if !unread.isEmpty {
                parts.append("\(Counted(unread.count, "domain")) not read: " + unread.joined(separator: "; "))
            }
            Terminal.printError(parts.joined(separator: "; ") + "; the points copied are complete")
            throw ExitCode.failure
        }
    }
}

extension SyncRequest.Scope: ExpressibleByArgument {}
