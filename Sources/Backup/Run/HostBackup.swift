import Foundation
import Libvirt
import Logging

/// Backs up several domains in one run (`pullback backup A B C`, `--all`): each as ``BackupRun`` backs up one, with
/// its own connection and its own domain lock, a bounded number at a time. One domain's failure is its result and
/// does not stop the others.
public enum HostBackup {
    /// What happened to one domain of the run: its backup's outcome or the error that ended it.
    public struct DomainResult: Sendable {
        /// The domain's name as requested.
        public var domain: String
        /// The finished backup, or why there is none.
        public var result: Result<BackupOutcome, BackupError>

        /// Whether the domain has a whole new point (made, and no disk missing from it).
        public var succeeded: Bool {
            if case .success(let outcome) = result { return outcome.missing.isEmpty }
            return false
        }
    }

    /// How many domains are backed up at a time unless told: two, and one on a one-CPU host. Each backup already
    /// reads every disk over several NBD connections and hashes (and maybe compresses) its clusters on every core, and
    /// the guests' QEMU processes serve the exports on the same CPUs and disks; a second backup overlaps what one
    /// mostly waits on (libvirt starting a domain, a checkpoint, the job's export) with another's copying, and more
    /// only contend for the same cores and storage while the guests keep running.
    public static var defaultParallelism: Int { min(2, max(1, ProcessInfo.processInfo.activeProcessorCount)) }

    /// The names of every domain the connection lists, running or shut off, sorted, without those in `excluded`.
    /// Names in `excluded` that the connection does not list are ignored: a host's domains come and go. Throws
    /// ``BackupError/Code/invalidRequest`` when no domain is left.
    public static func domains(connectURI: String?, excluding excluded: [String]) async throws(BackupError) -> [String]
    {
        let connection = try await RunStep.libvirt { () async throws(LibvirtError) in
            try await LibvirtConnection.open(uri: connectURI)
        }
        let names: [String]
        do throws(BackupError) {
            names = try await RunStep.libvirt { () async throws(LibvirtError) in try await connection.domainNames() }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        let left = Set(excluded)
        let chosen = names.filter { !left.contains($0) }.sorted()
        // A run that backs up nothing must not pass for a host's backup (a wrong --connect, say).
        guard !chosen.isEmpty else {
            let uri = connectURI ?? LibvirtConnection.defaultURI
            throw BackupError(
                .invalidRequest,
                names.isEmpty
                    ? "\(uri) lists no domain to back up: check --connect"
                    : "--exclude-domain leaves none of the \(names.count) domains of \(uri) to back up")
        }
        return chosen
    }

    /// Backs up `request` for each of `domains`, at most `parallel` at a time, and returns a result per domain in the
    /// order of `domains`. `finished` is called as each domain's backup ends, in the order they end. A cancelled run
    /// cancels the backups under way, which then end in their ``BackupError/Code/interrupted`` errors, and starts no
    /// more: the domains not started end in that error too.
    public static func run(
        _ request: BackupRequest, domains: [String], parallel: Int,
        logger: Logger = Logger(label: "pullback.backup", factory: { _ in SwiftLogNoOpLogHandler() }),
        finished: @escaping @Sendable (DomainResult) -> Void = { _ in }
    ) async -> [DomainResult] {
        var results = [DomainResult?](repeating: nil, count: domains.count)
        await withTaskGroup(of: (Int, DomainResult).self) { group in
            var next = 0
            func startNext() {
                guard next < domains.count else { return }
                let (index, domain) = (next, domains[next])
                next += 1
                var one = request
                one.domain = domain
                group.addTask { [one] in
                    let result: Result<BackupOutcome, BackupError>
                    if Task.isCancelled {
                        result = .failure(BackupError(.interrupted, "the run was interrupted before \(domain)"))
                    } else {
                        do throws(BackupError) {
                            result = .success(try await BackupRun.run(one, logger: logger))
                        } catch {
                            result = .failure(error)
                        }
                    }
                    let ended = DomainResult(domain: domain, result: result)
                    finished(ended)
                    return (index, ended)
                }
            }
            for _ in 0..<max(1, parallel) { startNext() }
            while let (index, result) = await group.next() {
                results[index] = result
                startNext()
            }
        }
        return results.enumerated().map { index, result in
            result
                ?? DomainResult(
                    domain: domains[index], result: .failure(BackupError(.interrupted, "the run was interrupted")))
        }
    }
}

/// `pullback backup --json` of several domains: every domain with its outcome or its error.
public struct HostBackupReport: Sendable, Encodable {
    /// One domain's entry: exactly one of `outcome` and `error`.
    public struct Entry: Sendable, Encodable {
        /// Why a domain has no point.
        public struct Failure: Sendable, Encodable {
            /// The error's code, as ``BackupError/Code`` describes it (`libvirt`, `repository`, ...).
            public var code: String
            /// The one-line message.
            public var message: String
        }

        /// The domain's name.
        public var domain: String
        /// The point the domain's backup made.
        public var outcome: BackupOutcome?
        /// Why the domain's backup failed.
        public var error: Failure?
    }

    /// One entry per domain, in the order the domains were given (sorted for `--all`).
    public var domains: [Entry]
    /// How many domains have no whole new point: failed, or partial (a disk missing from the point).
    public var failed: Int

    /// The report of `results`.
    public init(_ results: [HostBackup.DomainResult]) {
        domains = results.map { result in
            switch result.result {
            case .success(let outcome): Entry(domain: result.domain, outcome: outcome)
            case .failure(let error):
                Entry(
                    domain: result.domain,
                    error: Entry.Failure(code: error.code.description, message: error.message))
            }
        }
        failed = results.filter { !$0.succeeded }.count
    }
}
