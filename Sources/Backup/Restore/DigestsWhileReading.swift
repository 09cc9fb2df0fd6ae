import Engine
import FileIO
import QCOW2
import Repository
import Storage

/// The digest checks a restore makes while it writes: each image whose recorded digest is by pieces is checked from
/// the bytes the restore reads anyway (an ``ImagePieceLedger`` each), and only what the restore never reads (the
/// image's tables, clusters newer images replace) is read once more at the end.
///
/// A restore so reads each image once rather than twice; from a bucket, that halves the bytes fetched. Images with
/// another digest form (made by older builds) are read whole before the write, by ``PointRestore/check(_:progress:)``.
struct DigestsWhileReading: Sendable {
    private struct Check: Sendable {
        var image: PointChain.Image
        var ledger: ImagePieceLedger
        var size: UInt64
    }

    private var checks: [Check] = []
    /// Where every ledger keeps its hashes, made with the first.
    private var hashes: PieceHashFile?

    /// Whether `image` is checked while it is read rather than before.
    static func checks(_ image: PointChain.Image) -> Bool {
        ImagePieceLedger.canCheck(image)
    }

    /// `chain`'s layers for a reader, those of images checked while read told of every read; the hashes wait in
    /// `scratchFolder`.
    mutating func layers(of chain: PointChain, scratchFolder: String) throws(BackupError) -> [QCOW2Chain.ExpectedLayer]
    {
        var layers: [QCOW2Chain.ExpectedLayer] = []
        for image in chain.images {
            var layer = image.expectedLayer
            if Self.checks(image) {
                do throws(RepositoryError) {
                    // Opened for its size and let go: keeping a reader per image would hold a descriptor for each of
                    // a deep chain's thousands; ``finish()`` opens it again.
                    let size = try ImageDigest.reader(of: image).size
                    if hashes == nil { hashes = try PieceHashFile(in: scratchFolder) }
                    if let hashes, let ledger = try ImagePieceLedger(image, size: size, hashesIn: hashes) {
                        layer.observer = ledger
                        checks.append(Check(image: image, ledger: ledger, size: size))
                    }
                } catch {
                    throw BackupError(.repository, error.message, cause: error)
                }
            }
            layers.append(layer)
        }
        return layers
    }

    /// Reads what the restore did not, and returns one line per image that does not match its recorded digest (or
    /// could not be read), naming it, in the order of the chains; empty when all match. Eight images at a time: a
    /// bucket's chain of many small images is then not a round trip after another.
    func finish(limiter: ByteRateLimiter? = nil) async throws(BackupError) -> [String] {
        let checks = checks
        let outcomes = await withTaskGroup(of: (Int, Result<String?, RepositoryError>).self) { group in
            var outcomes = [Result<String?, RepositoryError>](repeating: .success(nil), count: checks.count)
            for (index, check) in checks.enumerated() {
                if index >= 8, let (done, outcome) = await group.next() { outcomes[done] = outcome }
                group.addTask { (index, await Self.finish(check, limiter: limiter)) }
            }
            for await (done, outcome) in group { outcomes[done] = outcome }
            return outcomes
        }
        var failures: [String] = []
        for (check, outcome) in zip(checks, outcomes) {
            switch outcome {
            case .success(nil): continue
            case .success(let problem?): failures.append("\(check.image.path) \(problem)")
            case .failure(let error) where error.code == .cancelled:
                throw BackupError(.interrupted, "interrupted while checking the restored images", cause: error)
            case .failure(let error): failures.append(error.message)
            }
        }
        return failures
    }

    /// One image's check: its size as when the restore began, then what its ledger says. Its reads wait for `limiter`
    /// on the pool's thread, which they block anyway.
    private static func finish(_ check: Check, limiter: ByteRateLimiter?) async -> Result<String?, RepositoryError> {
        let work = { @Sendable () throws(RepositoryError) -> String? in
            let reader = try ImageDigest.reader(of: check.image)
            guard reader.size == check.size else { return "changed while it was restored" }
            return try check.ledger.finish(reading: reader) { limiter?.waitBlocking(UInt64($0)) }
        }
        do throws(RepositoryError) {
            return .success(
                check.image.object == nil
                    ? try await BlockingWork.run(work) : try await BlockingWork.runWaitingOnNetwork(work))
        } catch {
            return .failure(error)
        }
    }
}
