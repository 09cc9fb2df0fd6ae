import ArgumentParser
import Backup
import Engine
import Foundation

/// `pullback verify`: a point's images, and those it is based on, against the digests recorded at commit.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check that a point's images, and those it is based on, are as they were committed.")

    @OptionGroup var selection: PointSelection

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @OptionGroup var progress: ProgressOption

    func run() async throws {
        let (repo, domain, at) = (selection.repository.path, selection.domain, selection.at)
        let showing = progress.isShown
        let report = try await Interruptible.run { () async throws(BackupError) -> PointVerification.Report in
            let counters = JobProgress()
            return try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await PointVerification.verify(
                    repository: repo, domain: domain, at: at, progress: showing ? counters : nil)
            }
        } describe: {
            $0.message
        }
        if json {
            print(try JSONOutput.line(report))
        } else {
            for image in report.images {
                let status: String
                switch image.status {
                case .ok: status = "ok"
                case .mismatch: status = "DAMAGED (recorded \(image.recorded ?? "-"), now \(image.actual ?? "-"))"
                case .missing: status = "MISSING"
                case .unrecorded: status = "no digest recorded (point made before digests were kept)"
                }
                print(Terminal.escaped("\(image.point)  \(image.target)  \(status)"))
            }
        }
        let failures = report.failures
        guard failures.isEmpty else {
            let named = failures.map(\.path).joined(separator: ", ")
            Terminal.printError(
                "\(failures.count) of \(report.images.count) images point \(report.point) of \(domain) needs are damaged or missing: \(named); restore them from another copy of the repository"
            )
            throw ExitCode.failure
        }
    }
}
