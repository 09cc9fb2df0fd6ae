import ArgumentParser
import Backup
import Foundation

/// `--metrics-file PATH`: after the run, how it went in Prometheus text for node_exporter's textfile collector
/// (``BackupMetricsFile``).
struct MetricsFileOption: ParsableArguments {
    @Option(
        name: .customLong("metrics-file"),
        help: ArgumentHelp(
            "After the run, write its metrics (Prometheus text) into this file, keeping other domains' series.",
            discussion:
                "For node_exporter's textfile collector: a file ending in .prom in its folder. Written atomically, under a lock, so that several timers can share it.",
            valueName: "path"),
        completion: .file(extensions: ["prom"]))
    var path: String?

    /// Refuses a path whose folder does not exist, or that is a folder, before anything is backed up.
    func validate() throws {
        guard let path else { return }
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw ValidationError("--metrics-file \(path) is a folder: name a file in it, e.g. \(path)/pullback.prom")
        }
        let folder = (path as NSString).deletingLastPathComponent
        guard
            folder.isEmpty
                || (FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue)
        else {
            throw ValidationError("--metrics-file \(path): the folder \(folder) does not exist; make it first")
        }
    }

    /// Runs `backup` of `domain` and, with the option, records how it ended. A metrics file that cannot be written is
    /// a warning: the backup's own result and exit status stay what they are.
    func recording(
        domain: String, repository: String, log: StderrLog, _ backup: () async throws -> BackupOutcome
    ) async throws -> BackupOutcome {
        guard let path else { return try await backup() }
        let file = BackupMetricsFile(path: path)
        let outcome: BackupOutcome
        do {
            outcome = try await backup()
        } catch {
            await Self.record([.failed(domain: domain)], in: file, repository: repository, log: log)
            throw error
        }
        await Self.record([.succeeded(outcome)], in: file, repository: repository, log: log)
        return outcome
    }

    /// Records `results` into `file`, or warns that it could not.
    static func record(
        _ results: [BackupRunResult], in file: BackupMetricsFile, repository: String, log: StderrLog
    ) async {
        do throws(MetricsFileError) {
            try await file.record(results, repository: repository)
        } catch {
            log.logger(label: "pullback.metrics").warning("\(error.message)")
            log.flush()
        }
    }
}
