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
                    let size = try ImageDigest.reader(of: image).size
                    if let ledger = try ImagePieceLedger(image, size: size, scratchFolder: scratchFolder) {
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
    /// could not be read), naming it; empty when all match.
    func finish() async throws(BackupError) -> [String] {
        var failures: [String] = []
        for check in checks {
            let work = { @Sendable () throws(RepositoryError) -> String? in
                let reader = try ImageDigest.reader(of: check.image)
                guard reader.size == check.size else { return "changed while it was restored" }
                return try check.ledger.finish(reading: reader)
            }
            do throws(RepositoryError) {
                let problem =
                    check.image.object == nil
                    ? try await BlockingWork.run(work) : try await BlockingWork.runWaitingOnNetwork(work)
                if let problem { failures.append("\(check.image.path) \(problem)") }
            } catch let error where error.code == .cancelled {
                throw BackupError(.interrupted, "interrupted while checking the restored images", cause: error)
            } catch {
                failures.append(error.message)
            }
        }
        return failures
    }
}
