import ArgumentParser
import Backup
import Engine
import Foundation

/// `pullback verify`: points' images, and those they are based on, against the digests recorded at commit; one
/// domain's point, or the latest or every point of one domain or of the whole repository; with `--content`, also what
/// each point's disks read against the content digests recorded at backup.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that points' images, and those they are based on, are as they were committed.")

    @OptionGroup var repository: RepositoryOption

    @OptionGroup var bucketRetries: BucketRetryOption

    @Argument(
        help: "Only this domain's points (default: every domain in the repository).", completion: .repositoryDomain)
    var domain: String?

    @Option(help: "The point id, latest (default: each domain's newest point), or all.", completion: .pointOrAll)
    var at = "latest"

    @Flag(help: "Also read each checked point's disks as a restore does and compare them with their content digests.")
    var content = false

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @OptionGroup var progress: ProgressOption

    func validate() throws {
        if domain == nil, at != "latest", at != "all" {
            throw ValidationError(
                "--at \(Terminal.escaped(at)) names one point: give its DOMAIN too, or use --at latest or --at all")
        }
    }

    func run() async throws {
        if let domain, at != "all" {
            try await verifyPoint(of: domain)
        } else {
            try await verifyPoints(scope: at == "all" ? .all : .latest)
        }
    }

    /// One point of one domain, as verify always did: its lines carry no domain.
    private func verifyPoint(of domain: String) async throws {
        let (repo, at, content) = (repository.path, at, content)
        let report = try await withProgress { progress async throws(BackupError) in
            try await PointVerification.verify(
                repository: repo, domain: domain, at: at, content: content, progress: progress)
        }
        if json {
            print(try JSONOutput.line(report))
        } else {
            for image in report.images { print(Terminal.escaped(Self.line(image, withDomain: false))) }
            for disk in report.contents ?? [] { print(Terminal.escaped(Self.line(disk, withDomain: false))) }
        }
        let failures = report.failures
        guard failures.isEmpty else {
            let named = Self.named(failures)
            Terminal.printError(
                "\(failures.count) of the \(Self.counted(report.images)) point \(report.point) of \(domain) needs \(Counted.be(failures.count)) damaged or missing: \(named); restore them from another copy of the repository"
            )
            throw ExitCode.failure
        }
        let differing = report.contentFailures
        guard differing.isEmpty else {
            Terminal.printError(Self.contentError(differing))
            throw ExitCode.failure
        }
    }

    /// The latest or every point of one domain, or of every domain: lines carry the domain when none was given.
    private func verifyPoints(scope: RepositoryVerification.Scope) async throws {
        let (repo, domains, content) = (repository.path, domain.map { [$0] }, content)
        let report = try await withProgress { progress async throws(BackupError) in
            try await RepositoryVerification.verify(
                repository: repo, domains: domains, scope: scope, content: content, progress: progress)
        }
        let withDomain = domain == nil
        if json {
            print(try JSONOutput.line(report))
        } else {
            for image in report.images { print(Terminal.escaped(Self.line(image, withDomain: withDomain))) }
            for disk in report.contents ?? [] { print(Terminal.escaped(Self.line(disk, withDomain: withDomain))) }
            for problem in report.problems {
                let prefix = withDomain ? problem.domain + "  " : ""
                print(Terminal.escaped("\(prefix)\(problem.point ?? "-")  CANNOT BE CHECKED: \(problem.message)"))
            }
            let domainCount = Set(report.points.map(\.domain)).count
            let contents = report.contents.map { ", \(Counted($0.count, "disk content"))" } ?? ""
            var found: [String] = []
            if !report.failures.isEmpty || !report.problems.isEmpty {
                found.append("\(report.failures.count) damaged or missing")
            }
            if !report.contentFailures.isEmpty { found.append("\(report.contentFailures.count) not as recorded") }
            print(
                "checked \(Counted(report.points.count, "point")) of \(Counted(domainCount, "domain")), "
                    + "\(Self.counted(report.images))\(contents): "
                    + (found.isEmpty ? "all as committed" : found.joined(separator: ", ")))
        }
        guard report.isClean else {
            var parts: [String] = []
            if !report.failures.isEmpty {
                let named = Self.named(report.failures)
                parts.append(
                    "\(report.failures.count) of \(Self.counted(report.images)) \(Counted.be(report.failures.count)) damaged, missing or unreadable: \(named)"
                )
            }
            if !report.problems.isEmpty {
                // A problem without a point is a whole domain whose manifests cannot be read.
                let named = report.problems.map { "\($0.domain)\($0.point.map { " " + $0 } ?? ""): \($0.message)" }
                parts.append("cannot be checked: \(named.joined(separator: "; "))")
            }
            var message = parts.joined(separator: "; ")
            if !parts.isEmpty { message += "; restore them from another copy of the repository" }
            if !report.contentFailures.isEmpty {
                message += (message.isEmpty ? "" : "; ") + Self.contentError(report.contentFailures, withDomain: true)
            }
            Terminal.printError(message)
            throw ExitCode.failure
        }
    }

    /// How many images were checked, and state files (NVRAM, TPM) when there were any: `3 images and 2 state files`.
    private static func counted(_ checks: [PointVerification.ImageCheck]) -> String {
        let state = checks.filter(\.isStateFile).count
        let images = Counted(checks.count - state, "image")
        return state == 0 ? "\(images)" : "\(images) and \(Counted(state, "state file"))"
    }

    /// Runs `work` with a progress bar when one is shown, and stops it on SIGINT and SIGTERM.
    private func withProgress<Report: Sendable>(
        _ work: @escaping @Sendable (JobProgress?) async throws(BackupError) -> Report
    ) async throws -> Report {
        let showing = progress.isShown
        return try await Interruptible.run { () async throws(BackupError) -> Report in
            let counters = JobProgress()
            return try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await work(showing ? counters : nil)
            }
        } describe: {
            $0.message
        }
    }

    /// The paths of `failures`, with the reason of each that could not be read.
    private static func named(_ failures: [PointVerification.ImageCheck]) -> String {
        failures.map { $0.path + ($0.problem.map { " (\($0))" } ?? "") }.joined(separator: ", ")
    }

    /// The disks whose content is not as recorded, each with both digests, in one line.
    private static func contentError(_ disks: [PointDigest.DiskCheck], withDomain: Bool = false) -> String {
        let named = disks.map { disk in
            let point = "point \(disk.point)" + (withDomain ? " of \(disk.domain)" : "")
            if disk.status == .unreadable {
                return "disk \(disk.target) of \(point) cannot be read (\(disk.problem ?? "-"))"
            }
            return
                "disk \(disk.target) of \(point) reads \(disk.actual ?? "-"), not the recorded \(disk.recorded ?? "-")"
        }
        return "\(Counted(disks.count, "disk")) not as backed up: \(named.joined(separator: "; ")); "
            + "an image was replaced or changed: restore it from another copy of the repository"
    }

    /// `[DOMAIN  ]POINT  TARGET  content STATUS`.
    private static func line(_ disk: PointDigest.DiskCheck, withDomain: Bool) -> String {
        let status: String
        switch disk.status {
        case .ok: status = "content ok"
        case .mismatch: status = "CONTENT DIFFERS (recorded \(disk.recorded ?? "-"), now \(disk.actual ?? "-"))"
        case .unrecorded: status = "no content digest recorded (point made before content digests were kept)"
        case .unreadable: status = "CONTENT UNREADABLE (\(disk.problem ?? "-"))"
        }
        return (withDomain ? disk.domain + "  " : "") + "\(disk.point)  \(disk.target)  \(status)"
    }

    /// `[DOMAIN  ]POINT  TARGET  STATUS`.
    private static func line(_ image: PointVerification.ImageCheck, withDomain: Bool) -> String {
        let status: String
        switch image.status {
        case .ok: status = "ok"
        case .mismatch: status = "DAMAGED (recorded \(image.recorded ?? "-"), now \(image.actual ?? "-"))"
        case .missing: status = "MISSING"
        case .unreadable: status = "UNREADABLE (\(image.problem ?? "-"))"
        case .unrecorded: status = "no digest recorded (point made before digests were kept)"
        }
        return (withDomain ? image.domain + "  " : "") + "\(image.point)  \(image.target)  \(status)"
    }
}
