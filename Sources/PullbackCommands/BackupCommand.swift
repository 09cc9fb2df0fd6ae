import ArgumentParser
import Backup
import Foundation
import Synchronization

/// `pullback backup`: one consistent, point-in-time backup of a domain's disks into a repository.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up a libvirt domain's disks (pull mode) into a repository, in full or incrementally."
    )

    @Argument(help: "The libvirt domain's name.")
    var domain: String

    @OptionGroup var repository: RepositoryOption

    @Option(help: "auto (default): incremental when the chain can continue, else full; full; or incremental.")
    var level: BackupLevel = .auto

    @Option(name: .customLong("disk"), help: "Back up only this disk target (repeatable).")
    var disks: [String] = []

    @Option(name: .customLong("exclude"), help: "Leave this disk target out (repeatable).")
    var excluded: [String] = []

    @OptionGroup var libvirt: LibvirtOption

    @Option(help: "Folder for QEMU's scratch images during the backup.")
    var scratchDir: String?

    @OptionGroup var connections: ConnectionsOption

    @Flag(help: "Print a JSON summary on stdout when done.")
    var json = false

    func run() async throws {
        let request = BackupRequest(
            domain: domain, repository: repository.path, level: level, disks: disks, excluded: excluded,
            connectURI: libvirt.uri, scratchDirectory: scratchDir, connections: connections.count)
        // Notes (skipped disks, why this level) go to stderr: at once on a terminal, else after a success,
        // so that a failed run's stderr is its one error line. stdout carries only the summary.
        let notes = NoteBuffer(immediate: Terminal.isTerminal(.standardError))
        let outcome = try await Interruptible.run { () async throws(BackupError) -> BackupOutcome in
            try await BackupRun.run(request) { note in notes.add(note) }
        } describe: {
            $0.message
        }
        notes.flush()
        if json {
            print(try JSONOutput.line(outcome))
        } else {
            let copied = outcome.disks.map { "\($0.target) \(ByteCount($0.bytesRead))" }.joined(separator: ", ")
            print(
                "\(outcome.level) backup \(outcome.point) of \(outcome.domain): \(copied), "
                    + String(format: "%.2f s", outcome.seconds))
        }
    }
}

extension BackupLevel: ExpressibleByArgument {}

/// Notes for stderr, written at once or kept until ``flush()``.
final class NoteBuffer: Sendable {
    private let immediate: Bool
    private let kept = Mutex<[String]>([])

    init(immediate: Bool) { self.immediate = immediate }

    func add(_ note: String) {
        if immediate { Terminal.writeError(note + "\n") } else { kept.withLock { $0.append(note) } }
    }

    func flush() {
        for note in kept.withLock({ notes in
            defer { notes = [] }
            return notes
        }) { Terminal.writeError(note + "\n") }
    }
}
