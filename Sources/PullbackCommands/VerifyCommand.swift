import ArgumentParser
import Backup
import Engine
import Foundation

/// `pullback verify`: points' images, and those they are based on, against the digests recorded at commit; one
/// domain's point, or the latest or every point of one domain or of the whole repository.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that points' images, and those they are based on, are as they were committed.")

    @OptionGroup var repository: RepositoryOption

    @Argument(
        help: "Only this domain's points (default: every domain in the repository).", completion: .repositoryDomain)
    var domain: String?

    @Option(help: "The point id, latest (default: each domain's newest point), or all.", completion: .pointOrAll)
    var at = "latest"

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
        let (repo, at) = (repository.path, at)
        let report = try await withProgress { progress async throws(BackupError) in
            try await PointVerification.verify(repository: repo, domain: domain, at: at, progress: progress)
        }
        if json {
            print(try JSONOutput.line(report))
        } else {
            for image in report.images { print(Terminal.escaped(Self.line(image, withDomain: false))) }
        }
        let failures = report.failures
        guard failures.isEmpty else {
            let named = Self.named(failures)
            Terminal.printError(
                "\(failures.count) of the \(Counted(report.images.count, "image")) point \(report.point) of \(domain) needs \(Counted.be(failures.count)) damaged or missing: \(named); restore them from another copy of the repository"
            )
            throw ExitCode.failure
        }
    }

    /// The latest or every point of one domain, or of every domain: lines carry the domain when none was given.
    private func verifyPoints(scope: RepositoryVerification.Scope) async throws {
        let (repo, domains) = (repository.path, domain.map { [$0] })
        let report = try await withProgress { progress async throws(BackupError) in
            try await RepositoryVerification.verify(
                repository: repo, domains: domains, scope: scope, progress: progress)
        }
        let withDomain = domain == nil
        if json {
            print(try JSONOutput.line(report))
        } else {
            for image in report.images { print(Terminal.escaped(Self.line(image, withDomain: withDomain))) }
            for problem in report.problems {
                let prefix = withDomain ? problem.domain + "  " : ""
                print(Terminal.escaped("\(prefix)\(problem.point ?? "-")  CANNOT BE CHECKED: \(problem.message)"))
            }
            let domainCount = Set(report.points.map(\.domain)).count
            print(
                "checked \(Counted(report.points.count, "point")) of \(Counted(domainCount, "domain")), "
                    + "\(Counted(report.images.count, "image")): "
                    + (report.isClean ? "all as committed" : "\(report.failures.count) damaged or missing"))
        }
        guard report.isClean else {
            var parts: [String] = []
            if !report.failures.isEmpty {
                let named = Self.named(report.failures)
                parts.append(
                    "\(report.failures.count) of \(Counted(report.images.count, "image")) \(Counted.be(report.failures.count)) damaged, missing or unreadable: \(named)"
                )
            }
            if !report.problems.isEmpty {
                // A problem without a point is a whole domain whose manifests cannot be read.
                let named = report.problems.map { "\($0.domain)\($0.point.map { " " + $0 } ?? ""): \($0.message)" }
                parts.append("cannot be checked: \(named.joined(separator: "; "))")
            }
            Terminal.printError(parts.joined(separator: "; ") + "; restore them from another copy of the repository")
            throw ExitCode.failure
        }
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
