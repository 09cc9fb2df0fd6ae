import ArgumentParser
import Backup
import Foundation
import Repository

/// `pullback list`: the points of a repository.
struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the backup points in a repository.")

    @OptionGroup var repository: RepositoryOption

    @OptionGroup var bucketRetries: BucketRetryOption

    @Argument(help: "Only this domain's points (an error when it has none).", completion: .repositoryDomain)
    var domain: String?

    @Flag(help: "Print the points as one JSON array.")
    var json = false

    struct Row: Encodable {
        var domain: String
        var id: String
        var level: String
        var finished: Date
        var disks: [String]
        var bytes: UInt64
        var parent: String?
        /// The domain's disks the point does not hold (``PointCoverage``); absent when its saved XML cannot be read.
        var lacks: [String]?
        /// How the point's images are compressed (`zstd:3`); absent when they are not.
        var compression: String?
        /// True when the repository is encrypted; absent when it is not.
        var encrypted: Bool?
        /// The domain's state the point keeps besides its disks (NVRAM, TPM); absent when none.
        var state: [StateRow]?
    }

    struct StateRow: Encodable {
        var kind: String
        var file: String
        var bytes: UInt64
    }

    func run() throws {
        let backups = BackupRepository(root: repository.path)
        var rows: [Row] = []
        do throws(RepositoryError) {
            let names: [String]
            if let domain { names = [domain] } else { names = try backups.domainNames() }
            for name in names {
                // A domain asked for by name must have points, as in restore and verify; the whole listing may be empty.
                for point in try domain == nil ? backups.points(of: name) : backups.requiredPoints(of: name) {
                    rows.append(
                        Row(
                            domain: name, id: point.id, level: point.manifest.level.rawValue,
                            finished: point.manifest.finished, disks: point.manifest.disks.map(\.target),
                            bytes: point.manifest.totalBytesCopied, parent: point.manifest.parent,
                            lacks: PointCoverage.lackedDisks(of: point), compression: point.manifest.compression,
                            encrypted: backups.isEncrypted ? true : nil,
                            state: point.manifest.state.map {
                                $0.map { StateRow(kind: $0.kind.rawValue, file: $0.file, bytes: $0.size) }
                            }))
                }
            }
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
        if json {
            print(try JSONOutput.line(rows, dates: .iso8601))
            return
        }
        for row in rows {
            // Every name comes from the repository, which may have been edited: escaped.
            let line =
                "\(row.domain)  \(row.id)  \(row.level.padding(toLength: 11, withPad: " ", startingAt: 0))  "
                + "\(row.disks.joined(separator: ","))  \(ByteCount(row.bytes))"
                + (row.parent.map { "  parent \($0)" } ?? "")
                + (row.compression.map { "  \($0)" } ?? "")
                + (row.encrypted == true ? "  encrypted" : "")
                + (row.state.map { "  + " + Set($0.map(\.kind)).sorted().joined(separator: ",") } ?? "")
                + (row.lacks.flatMap { $0.isEmpty ? nil : "  lacks " + $0.joined(separator: ",") } ?? "")
            print(Terminal.escaped(line))
        }
    }
}
