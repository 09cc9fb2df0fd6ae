import ArgumentParser
import Backup
import Foundation
import Repository

/// `pullback backup A B C` and `pullback backup --all`: several domains in one run.
extension BackupCommand {
    /// Refuses a run that names no domain, or names domains and `--all`, or asks for disks by target of more than one
    /// domain.
    func validateDomains() throws {
        if domains.isEmpty, !all {
            throw ValidationError("give the name of a domain to back up (or several), or --all for every domain")
        }
        if !domains.isEmpty, all {
            throw ValidationError("--all backs up every domain: give either domain names or --all, not both")
        }
        if !excludedDomains.isEmpty, !all {
            throw ValidationError("--exclude-domain leaves domains out of --all: give --all, or name the domains")
        }
        if let parallel, parallel < 1 {
            throw ValidationError("--parallel needs a number of domains of at least 1, e.g. 2")
        }
        // Disk targets (vda, sdb) mean different disks of different domains.
        if all || domains.count > 1, !disks.isEmpty || !excluded.isEmpty {
            throw ValidationError(
                "--disk and --exclude name disk targets of one domain: give one domain, or leave them out to back up every disk"
            )
        }
    }

    /// Backs up the named domains, or every domain of the connection under `--all`, `--parallel` at a time, and
    /// prints a line per domain: the point's summary on stdout, or its error on stderr (with `--json`, one document
    /// of every domain on stdout). Exits 1 when any domain has no whole new point. There is no progress bar: several
    /// backups run at once.
    func runSeveral(_ request: BackupRequest, log: StderrLog) async throws {
        let logger = log.logger(label: "pullback.backup")
        let (names, excluded, uri) = (domains, excludedDomains, request.connectURI)
        let parallel = parallel ?? HostBackup.defaultParallelism
        let (all, repository) = (self.all, request.repository)
        let results = try await Interruptible.run(logging: log) {
            () async throws(BackupError) -> [HostBackup.DomainResult] in
            // Checked once here rather than once per domain: every backup would refuse a path that is no repository.
            _ = try Self.openRepository(repository)
            let chosen = all ? try await HostBackup.domains(connectURI: uri, excluding: excluded) : names
            let results = await HostBackup.run(request, domains: chosen, parallel: parallel, logger: logger)
            if Task.isCancelled {
                let done = results.filter(\.succeeded).map(\.domain)
                throw BackupError(
                    .interrupted,
                    "interrupted after backing up \(done.count) of \(results.count) domains"
                        + (done.isEmpty ? "" : " (\(done.joined(separator: ", ")))"))
            }
            return results
        }
        if let path = metrics.path {
            let recorded: [BackupRunResult] = results.map {
                switch $0.result {
                case .success(let outcome): .succeeded(outcome)
                case .failure: .failed(domain: $0.domain)
                }
            }
            await MetricsFileOption.record(
                recorded, in: BackupMetricsFile(path: path), repository: repository, log: log)
        }
        if json { print(try JSONOutput.line(HostBackupReport(results))) }
        for result in results {
            switch result.result {
            case .success(let outcome):
                if !json { print(Self.summaryLine(outcome)) }
            case .failure(let error):
                log.fail("backup of \(result.domain) failed: \(error.message)")
            }
        }
        if results.contains(where: { !$0.succeeded }) { throw ExitCode.failure }
    }

    private static func openRepository(_ path: String) throws(BackupError) -> BackupRepository {
        do throws(RepositoryError) {
            return try BackupRepository.open(root: path)
        } catch {
            throw BackupError(.repository, error.message, cause: error)
        }
    }
}
