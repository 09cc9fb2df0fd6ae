import FileIO
import Foundation
import Repository
import SystemPackage

/// `backup --metrics-file`: a file of Prometheus text for node_exporter's textfile collector, rewritten after each run
/// with the run's domains changed and every other domain's series kept, so that several timers can share one file.
///
/// A run reads the file, merges and writes it under an `flock` on `<file>.lock`, so that two runs ending together
/// never lose each other's domains. The new text goes to `<file>.tmp` in the same folder (the collector reads only
/// `*.prom`), is flushed, and replaces the file by a rename: the collector sees the old file or the new one, never half
/// of one. The failure counter is carried over from the file's earlier value, so it counts across runs for as long
/// as the file is kept.
public struct BackupMetricsFile: Sendable {
    /// The file's path.
    public let path: String

    /// How long a run waits for another run's lock: far longer than reading and writing the file takes.
    static let lockWait: Duration = .seconds(30)
    static let lockPoll: Duration = .milliseconds(50)
    /// Larger than Pullback ever writes (a domain takes about 2 KiB): a larger file is someone else's.
    static let sizeLimit = 16 << 20
    /// Readable by all: node_exporter reads the file as its own user.
    static let permissions: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]

    /// The metrics file at `path`.
    public init(path: String) {
        self.path = path
    }

    /// Records `results`, the runs that ended at `time`, into the file: each succeeded run's point is looked up in
    /// `repository` for the bytes it holds. On a failure the file is as it was.
    public func record(
        _ results: [BackupRunResult], repository: String, at time: Date = Date()
    ) async throws(MetricsFileError) {
        let written = try await BlockingWork.run { () throws(MetricsFileError) -> [UInt64?] in
            results.map { result in
                guard case .succeeded(let outcome) = result else { return nil }
                return Self.storedBytes(of: outcome, in: repository)
            }
        }
        let lock = try await takeLock()
        defer { lock.closeAfterUse() }
        try await BlockingWork.run { () throws(MetricsFileError) in
            var domains = BackupMetricsExposition.domains(in: try readEarlier())
            let seconds = time.timeIntervalSince1970
            for (result, bytes) in zip(results, written) {
                switch result {
                case .succeeded(let outcome):
                    domains[outcome.domain, default: DomainBackupMetrics()]
                        .recordSuccess(outcome, bytesWritten: bytes, at: seconds)
                case .failed(let domain):
                    domains[domain, default: DomainBackupMetrics()].recordFailure(at: seconds)
                }
            }
            try replace(with: BackupMetricsExposition.text(of: domains))
        }
    }

    /// The bytes `outcome`'s point holds in the repository (its objects and manifest), or nil when the point cannot
    /// be read (pruned already, say).
    static func storedBytes(of outcome: BackupOutcome, in repository: String) -> UInt64? {
        do throws(RepositoryError) {
            let point = try BackupRepository.open(root: repository).point(outcome.point, of: outcome.domain)
            let objects = try point.objects().reduce(UInt64(0)) { $0 + $1.size }
            return objects + UInt64(try point.committedManifest().count)
        } catch {
            return nil
        }
    }

    /// The lock file, open and locked. Waits, without blocking a thread, while another run holds it.
    private func takeLock() async throws(MetricsFileError) -> FileDescriptor {
        let lockPath = path + ".lock"
        let file = try await BlockingWork.run { () throws(MetricsFileError) -> FileDescriptor in
            do throws(Errno) {
                return try FileDescriptor.open(
                    path: lockPath, .readWrite, options: [.create, .noFollow], permissions: .ownerReadWrite)
            } catch {
                throw MetricsFileError(failed: "open the lock of", path, error)
            }
        }
        let deadline = ContinuousClock.now + Self.lockWait
        while true {
            do throws(Errno) {
                if try file.tryLock() { return file }
            } catch {
                file.closeAfterUse()
                throw MetricsFileError(failed: "lock", path, error)
            }
            guard ContinuousClock.now < deadline else {
                file.closeAfterUse()
                throw MetricsFileError(
                    .locked, "another process has held \(lockPath) for \(Self.lockWait): the metrics were not written")
            }
            do { try await Task.sleep(for: Self.lockPoll) } catch {
                file.closeAfterUse()
                throw .interrupted()
            }
        }
    }
}
