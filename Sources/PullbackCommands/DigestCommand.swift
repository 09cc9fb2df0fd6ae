import ArgumentParser
import Backup
import Engine
import Foundation
import NBD

/// `pullback digest`: the content digest of a disk, whatever holds it (an NBD export, an image file, a backup point's
/// disks), one line per digest as `sha256sum` prints them; two disks have the same digest exactly when they read the
/// same bytes.
struct DigestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "digest",
        abstract: "Print the content digest of an NBD export, an image file, or a backup point's disks.",
        discussion: """
            The digest (sha256-tree:<hex>) is of the bytes a guest reads, not of a file: a point's disks, their \
            restored images (raw or qcow2) and the disks they were read from have the same one. With --repo, SOURCE \
            is a domain and each disk of its point is read as a restore reads it and compared with the digest its \
            manifest recorded; a difference fails the command.
            """)

    @Argument(
        help: """
            An NBD URI (nbd+unix:///EXPORT?socket=PATH, nbd://HOST:PORT/EXPORT, nbds://...), a qcow2 image (with its \
            backing chain) or a raw image; with --repo, the domain whose point to read.
            """, completion: .file())
    var source: String

    @Option(
        name: .customLong("repo"), help: "Read a backup point of this repository: SOURCE is then its domain.",
        completion: .directory)
    var repository: String?

    @Option(help: "With --repo: the point id, or latest.", completion: .point)
    var at: String?

    @Option(name: .customLong("disk"), help: "With --repo: only this disk target (repeatable; default: every disk).")
    var disks: [String] = []

    @OptionGroup var tls: SourceTLSOption

    @OptionGroup var connections: ConnectionsOption

    @OptionGroup var faults: FaultOptions

    @Flag(help: "Print the result as one JSON object.")
    var json = false

    @OptionGroup var progress: ProgressOption

    func validate() throws {
        if repository == nil {
            if at != nil { throw ValidationError("--at needs --repo: it names a point of a repository") }
            if !disks.isEmpty { throw ValidationError("--disk needs --repo: it names a disk of a repository's point") }
        } else if tls.tlsCertificates != nil {
            throw ValidationError("--tls-certificates is for an nbds:// SOURCE, not a repository's point")
        }
        if Self.isExport(source) || tls.tlsCertificates != nil { try tls.validate(source: source) }
    }

    func run() async throws {
        if let repository {
            try await digestPoint(in: repository)
        } else if Self.isExport(source) {
            try await digestExport()
        } else {
            let (path, showing) = (source, progress.isShown)
            let digest = try await Interruptible.run { () async throws(CopyError) -> String in
                let counters = CopyProgress()
                return try await ProgressBar.while(showing: showing, counters) { () async throws(CopyError) in
                    try await ContentDigest.ofImage(path: path, progress: counters)
                }
            }
            try printDigest(digest)
        }
    }

    /// Whether `source` is an NBD URI rather than a file: it starts with one of libnbd's schemes.
    static func isExport(_ source: String) -> Bool {
        guard let separator = source.range(of: "://") else { return false }
        let scheme = source[..<separator.lowerBound]
        return NBDURI.schemes.contains(String(scheme))
    }

    private func digestExport() async throws {
        if let problem = tls.secretProblem(source: source) {
            Terminal.printError(problem)
            throw ExitCode.failure
        }
        let (uri, showing) = (tls.uri(for: source), progress.isShown)
        var transfer = TransferOptions(connections: connections.count)
        (transfer.retry, transfer.stallTimeout) = (faults.retry, faults.stall)
        let options = transfer
        let digest = try await Interruptible.run { () async throws(CopyError) -> String in
            let counters = CopyProgress()
            return try await ProgressBar.while(showing: showing, counters) { () async throws(CopyError) in
                try await ContentDigest.ofExport(uri: uri, transfer: options, progress: counters)
            }
        }
        try printDigest(digest)
    }

    /// An export's or a file's digest: `DIGEST  SOURCE`, or `{"digest":...,"source":...}`.
    private func printDigest(_ digest: String) throws {
        if json {
            print(try JSONOutput.line(["digest": digest, "source": source]))
        } else {
            print(Terminal.escaped("\(digest)  \(source)"))
        }
    }

    private func digestPoint(in repo: String) async throws {
        let (domain, at, disks, showing) = (source, at ?? "latest", disks, progress.isShown)
        let report = try await Interruptible.run { () async throws(BackupError) -> PointDigest.Report in
            let counters = JobProgress()
            return try await ProgressBar.while(showing: showing, counters) { () async throws(BackupError) in
                try await PointDigest.digest(
                    repository: repo, domain: domain, at: at, targets: disks, progress: showing ? counters : nil)
            }
        } describe: {
            $0.message
        }
        if json {
            print(try JSONOutput.line(report))
        } else {
            for disk in report.disks { print(Terminal.escaped(Self.line(disk))) }
        }
        guard report.mismatches.isEmpty else {
            let named = report.mismatches.map {
                "disk \($0.target) reads \($0.actual ?? "-"), not the recorded \($0.recorded ?? "-")"
            }
            Terminal.printError(
                "point \(report.point) of \(report.domain): \(named.joined(separator: "; ")); its images were changed since the backup: run pullback verify --content"
            )
            throw ExitCode.failure
        }
    }

    /// `DIGEST  DOMAIN/POINT/TARGET  STATUS`.
    static func line(_ disk: PointDigest.DiskCheck) -> String {
        let status: String
        switch disk.status {
        case .ok: status = "as recorded"
        case .mismatch: status = "DIFFERS from the recorded \(disk.recorded ?? "-")"
        case .unrecorded: status = "no digest recorded (point made before content digests were kept)"
        case .unreadable: status = "UNREADABLE (\(disk.problem ?? "-"))"
        }
        return "\(disk.actual ?? "-")  \(disk.domain)/\(disk.point)/\(disk.target)  \(status)"
    }
}
