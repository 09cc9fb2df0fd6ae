import Engine
import FileIO
import Logging
import Repository

/// The block hashes a point keeps per disk (``BlockHashFile``), from which the next point's content digest is built
/// without reading what did not change.
enum PointBlockHashes {
    /// Disk `target`'s block hashes in `point`, checked against the content digest its manifest records; nil when the
    /// point has none (made before content digests were kept) or they are damaged, which `logger` is told: the next
    /// point then gets no content digest, and `pullback verify --content` finds what is wrong.
    static func table(of point: BackupPoint, target: String, logger: Logger?) async -> BlockHashTable? {
        guard let disk = point.manifest.disks.first(where: { $0.target == target }),
            let recorded = disk.contentDigest, let name = disk.blockHashes
        else { return nil }
        let size = disk.virtualSize
        let limit = min(BlockHashFile.maximumSize(forDiskSize: size), 1 << 34)
        let loaded: BlockHashTable?
        do throws(CopyError) {
            loaded = try await BlockingWork.run { () throws(CopyError) -> BlockHashTable? in
                do throws(RepositoryError) {
                    guard let bytes = try point.file(name, limit: limit),
                        let table = BlockHashFile.decode(bytes, size: size), table.digest == recorded
                    else { return nil }
                    return table
                } catch {
                    throw CopyError(.source, error.message, cause: error)
                }
            }
        } catch {
            logger?.notice(
                "\(target): the block hashes of point \(point.id) cannot be read (\(error.message)); this point gets no content digest"
            )
            return nil
        }
        if let loaded { return loaded }
        logger?.notice(
            "\(target): the block hashes of point \(point.id) are missing or do not give its content digest; this point gets none (run pullback verify --content)"
        )
        return nil
    }

    /// Writes `table` as disk `target`'s block hashes into `pending`, durably, and returns the manifest's two fields.
    static func write(_ table: BlockHashTable, of target: String, into pending: PendingPoint) async throws(CopyError)
        -> (contentDigest: String, blockHashes: String)
    {
        let bytes = BlockHashFile.encode(table)
        let digest = table.digest
        try await BlockingWork.run { () throws(CopyError) in
            do throws(RepositoryError) {
                try pending.writeFile(bytes, to: PendingPoint.blockHashesName(for: target))
            } catch {
                throw CopyError(.target, error.message, cause: error)
            }
        }
        return (digest, PendingPoint.blockHashesName(for: target))
    }
}
