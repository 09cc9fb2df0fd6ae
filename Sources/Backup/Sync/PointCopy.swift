import Engine
import FileIO
import Repository
import Synchronization

/// Copies one committed point into another repository, object by object, each checked on the way: an image against
/// its manifest's `imageDigest` (when recorded), a state file (NVRAM, TPM) against its digest, a disk's block hashes
/// against its `contentDigest`, any other object (saved XML) as it is. The manifest goes last, and the point is
/// published only when everything checked out.
enum PointCopy {
    /// An object of the point that failed its check or could not be copied.
    struct Damage: Error {
        var object: String
        var message: String
    }

    /// Copies `point` of `domain` into `target`, whose lock for the domain the caller holds, and returns the bytes
    /// copied. Throws ``Damage`` for an object that fails its check, a ``BackupError`` otherwise; the point is then
    /// not in the target. `objects` are the point's objects when the caller listed them already; `counters` count
    /// the bytes of its objects as they are read; reads wait for `limiter` when one is given.
    static func copy(
        _ point: BackupPoint, of domain: String, into target: BackupRepository, lock: borrowing DomainLock,
        objects listed: [(name: String, size: UInt64)]?, counters: CopyProgress, limiter: ByteRateLimiter?
    ) async throws -> UInt64 {
        let (objects, manifest) = try await BlockingWork.run { () throws(RepositoryError) in
            // Not with `??`: its autoclosure would lose the error's type.
            let objects = if let listed { listed } else { try point.objects() }
            return (objects, try point.committedManifest())
        }
        let names = objects.map(\.name)
        for disk in point.manifest.disks {
            for name in [disk.image] + (disk.blockHashes.map { [$0] } ?? []) where !names.contains(name) {
                throw Damage(object: name, message: "\(point.folder)/\(name) is missing")
            }
        }
        for entry in point.manifest.state ?? [] where !names.contains(entry.file) {
            throw Damage(object: entry.file, message: "\(point.folder)/\(entry.file) is missing")
        }
        let total = Mutex<UInt64>(UInt64(manifest.count))
        _ = try await target.withCopiedPoint(point.id, of: domain, manifest: manifest, lock: lock) { incoming in
            for name in names {
                if Task.isCancelled { throw BackupError(.interrupted, "interrupted while copying point \(point.id)") }
                let bytes = try await copyObject(
                    name, of: point, into: incoming, counters: counters, limiter: limiter)
                total.withLock { $0 += bytes }
            }
        }
        return total.withLock { $0 }
    }

    /// Copies the object `name` of `point` into `incoming`, checked as its kind is, and returns its size.
    private static func copyObject(
        _ name: String, of point: BackupPoint, into incoming: IncomingPoint, counters: CopyProgress,
        limiter: ByteRateLimiter?
    ) async throws -> UInt64 {
        if let disk = point.manifest.disks.first(where: { $0.blockHashes == name }) {
            return try await copyBlockHashes(
                name, of: disk, in: point, into: incoming, counters: counters, limiter: limiter)
        }
        let recorded =
            point.manifest.disks.first { $0.image == name }?.imageDigest
            ?? point.manifest.state?.first { $0.file == name }?.digest
        let cancelled = CancelFlag()
        let copied = await withTaskCancellationHandler {
            await attempt { () async throws(RepositoryError) in
                try await BlockingWork.run { () throws(RepositoryError) -> (digest: String, size: UInt64) in
                    try incoming.copy(
                        name, of: point, like: recorded, isCancelled: { cancelled.isSet },
                        reading: { count in
                            counters.addRead(UInt64(count))
                            // The copy runs on the I/O pool, reading synchronously: its thread waits there.
                            limiter?.waitBlocking(UInt64(count))
                        })
                }
            }
        } onCancel: {
            cancelled.set()
        }
        let (digest, size) = try checked(copied, object: name, of: point)
        if let recorded, digest != recorded {
            throw Damage(
                object: name,
                message: "\(point.folder)/\(name) reads \(digest), not the recorded \(recorded): it is damaged")
        }
        return size
    }

    /// Reads a disk's block hashes whole (as a backup does), checks that they give the disk's recorded content
    /// digest, and writes them into `incoming`.
    private static func copyBlockHashes(
        _ name: String, of disk: BackupManifest.Disk, in point: BackupPoint, into incoming: IncomingPoint,
        counters: CopyProgress, limiter: ByteRateLimiter?
    ) async throws -> UInt64 {
        let limit = min(BlockHashFile.maximumSize(forDiskSize: disk.virtualSize), 1 << 34)
        let read = await attempt { () async throws(RepositoryError) in
            try await BlockingWork.run { () throws(RepositoryError) in try point.file(name, limit: limit) }
        }
        guard let bytes = try checked(read, object: name, of: point) else {
            throw Damage(object: name, message: "\(point.folder)/\(name) is missing")
        }
        let digest = BlockHashFile.decode(bytes, size: disk.virtualSize)?.digest
        guard let digest, digest == disk.contentDigest else {
            throw Damage(
                object: name,
                message:
                    "\(point.folder)/\(name) does not give the recorded content digest \(disk.contentDigest ?? "-"): it is damaged"
            )
        }
        let written = await attempt { () async throws(RepositoryError) in
            try await BlockingWork.run { () throws(RepositoryError) in try incoming.write(bytes, to: name) }
        }
        try checked(written, object: name, of: point)
        counters.addRead(UInt64(bytes.count))
        do { try await limiter?.acquire(UInt64(bytes.count)) } catch {
            throw BackupError(.interrupted, "interrupted while copying point \(point.id)")
        }
        return UInt64(bytes.count)
    }

    /// What `body` returned or threw.
    private static func attempt<T>(_ body: () async throws(RepositoryError) -> T) async -> Result<T, RepositoryError> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// `result`'s value; an interruption or a full target as a ``BackupError`` that ends the sync, any other failure
    /// as ``Damage`` of the object `name`, which ends only this point's copy.
    @discardableResult
    private static func checked<T>(_ result: Result<T, RepositoryError>, object name: String, of point: BackupPoint)
        throws -> T
    {
        switch result {
        case .success(let value):
            return value
        case .failure(let error) where error.code == .cancelled:
            throw BackupError(.interrupted, "interrupted while copying point \(point.id)", cause: error)
        case .failure(let error) where error.code == .noSpace:
            throw BackupError(error)
        case .failure(let error):
            throw Damage(object: name, message: error.message)
        }
    }
}

/// Set once, read from any thread: tells a copy running on the I/O pool that its task was cancelled.
private final class CancelFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
