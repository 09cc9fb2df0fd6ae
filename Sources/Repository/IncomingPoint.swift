import Storage

/// A point being copied into a repository from another one (``BackupRepository/withCopiedPoint(_:of:manifest:lock:_:)``):
/// its objects are written under the prefix its group was begun at, and nothing of it is listed until its manifest,
/// written last, commits it.
public final class IncomingPoint: Sendable {
    /// The point's id, the same as in the repository it comes from.
    public let id: String
    /// The prefix its objects are written under (see ``Storage/ObjectStore/beginGroup(_:stagingAt:)``).
    let key: ObjectKey
    let store: any ObjectStore

    init(id: String, key: ObjectKey, store: any ObjectStore) {
        self.id = id
        self.key = key
        self.store = store
    }

    /// Streams the object `name` of `source` into this point, reader to writer a chunk at a time (never whole in
    /// memory), and returns its size and its digest in the form of `recorded` (a whole object's when nil), taken
    /// from the very bytes written: the caller compares it with the record before committing. `reading` is told
    /// the size of each chunk; `isCancelled` is asked between chunks. A source object that is missing, is not an
    /// object, or changes size while it is read fails the copy, and nothing of it stays.
    public func copy(
        _ name: String, of source: BackupPoint, like recorded: String?, isCancelled: () -> Bool,
        reading: (Int) -> Void
    ) throws(RepositoryError) -> (digest: String, size: UInt64) {
        let (sourceStore, sourceKey) = try storeStep { () throws(StoreError) in try source.object(name) }
        let location = sourceStore.location(of: sourceKey)
        guard let reader = try storeStep({ () throws(StoreError) in try sourceStore.open(sourceKey) }) else {
            throw RepositoryError(.notFound, "\(location) is missing")
        }
        let writer = try storeStep { () throws(StoreError) in try store.create(key.appending(name)) }
        do throws(RepositoryError) {
            let copying = CopyingReader(reader: reader, writer: writer)
            let digest = try ImageDigest.of(
                reader: copying, location: location, like: recorded, isCancelled: isCancelled, reading: reading)
            guard writer.count == reader.size else {
                throw RepositoryError(
                    .corrupt, "\(location) changed while it was copied (\(writer.count) bytes, not \(reader.size))")
            }
            try storeStep { () throws(StoreError) in try writer.finish() }
            return (digest, reader.size)
        } catch {
            writer.discard()
            throw error
        }
    }

    /// Writes `bytes` as the object `name` of the point (block hashes already read and checked).
    public func write(_ bytes: [UInt8], to name: String) throws(RepositoryError) {
        try storeStep { () throws(StoreError) in try store.write(bytes, to: key.appending(name)) }
    }
}

/// A reader that appends every chunk read from it to `writer`, so that one pass over a source object both digests it
/// and writes its copy. It is read once, in order, by one thread (the digest's), which the offsets it is asked for
/// show.
private final class CopyingReader: ObjectReader, @unchecked Sendable {
    // @unchecked: the writer is not Sendable; one thread reads this reader, front to back, for one copy.
    let reader: any ObjectReader
    let writer: any ObjectWriter

    init(reader: any ObjectReader, writer: any ObjectWriter) {
        self.reader = reader
        self.writer = writer
    }

    var size: UInt64 { reader.size }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(StoreError) -> Int {
        precondition(offset == writer.count, "a copied object is read in order, each byte once")
        let count = try reader.read(into: buffer, at: offset)
        if count > 0 { try writer.append(UnsafeRawBufferPointer(rebasing: buffer[..<count])) }
        return count
    }

    func readsOnceInOrder() { reader.readsOnceInOrder() }
}
