import Crypto
import FileIO
import Foundation
import Storage
import Synchronization
import SystemPackage

/// An image's SHA-256, in one of two forms. A point's manifest keeps one per image, so bit rot or a tampered image is
/// found (`pullback verify`) before a restore relies on it.
///
/// - `sha256:<hex>`: of the whole file, what `sha256sum` prints for it. Images whose digest is read back.
/// - `sha256-split:<n>:<hex>:<hex>`: of the file's first `n` bytes (the qcow2 header cluster) and of the rest,
///   what `head -c n FILE | sha256sum` and `tail -c +$((n + 1)) FILE | sha256sum` print. Images that pullback
///   hashes while it writes them (QCOW2's `SplitDigest`), so that a backup never reads its images back.
/// - `sha256-pieces:<n>:<hex>:<hex>`: as the split form, but the rest is hashed by 64 KiB pieces: the SHA-256 of the
///   SHA-256s of each piece (the last padded with zeros) and of the rest's length (8 bytes, big-endian), so that a backup hashes each data cluster once for its content
///   digest and the file's. `python3 -c` with hashlib checks it in three lines (README: Verify).
public enum ImageDigest {
    /// The prefix of a whole file's digest.
    public static let prefix = "sha256:"
    /// The prefix of a digest in two parts.
    public static let splitPrefix = "sha256-split:"
    /// The prefix of a digest in two parts whose second is hashed by pieces.
    public static let piecesPrefix = "sha256-pieces:"
    /// The size of a piece.
    static let pieceSize = 65536

    /// The digest in two parts, of the first `headLength` bytes (`head`) and of the rest (`tail`), as a manifest
    /// records it.
    public static func recorded(headLength: Int, head: [UInt8], tail: [UInt8], piecewise: Bool = false) -> String {
        (piecewise ? piecesPrefix : splitPrefix) + "\(headLength):" + Hex.encode(head) + ":" + Hex.encode(tail)
    }

    /// Where a recorded digest splits the file: nil for a whole file's digest (or one that is not valid), else the
    /// length of the first part, a power of two from 512 bytes to 2 MiB (qcow2's cluster sizes).
    static func splitLength(of digest: String) -> Int? {
        guard let prefix = [splitPrefix, piecesPrefix].first(where: digest.hasPrefix) else { return nil }
        let parts = digest.dropFirst(prefix.count).split(separator: ":", omittingEmptySubsequences: false)
        let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
        guard parts.count == 3, parts[0].count <= 7, parts[0].utf8.allSatisfy(digits.contains),
            let length = Int(parts[0]), (512...(2 << 20)).contains(length), length & (length - 1) == 0,
            isHex(parts[1]), isHex(parts[2])
        else { return nil }
        return length
    }

    /// Whether `digest` is one of the two forms, with lowercase hex digits.
    static func isValid(_ digest: String) -> Bool {
        if digest.hasPrefix(splitPrefix) || digest.hasPrefix(piecesPrefix) { return splitLength(of: digest) != nil }
        return digest.hasPrefix(prefix) && isHex(digest.dropFirst(prefix.count))
    }

    /// Reads `path` on NIO's I/O thread pool, off Swift's cooperative pool, and returns its digest in the form of
    /// `recorded` (a whole file's when nil). Cancelling the task stops the read (with
    /// ``RepositoryError/Code/cancelled``), which a pool thread would not notice itself. `reading` is told the size
    /// of each chunk read, for a progress bar.
    public static func of(
        _ path: String, like recorded: String? = nil, reading: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws(RepositoryError) -> String {
        try await offThePool { isCancelled throws(RepositoryError) in
            try ofFile(path, like: recorded, isCancelled: isCancelled, reading: reading)
        }
    }

    /// The digest of `layer`'s image, a file or an object of a store, read as ``of(_:like:reading:)`` reads a file.
    package static func of(
        _ layer: ImageLayer, like recorded: String? = nil, reading: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws(RepositoryError) -> String {
        guard let object = layer.object else { return try await of(layer.path, like: recorded, reading: reading) }
        return try await offThePool { isCancelled throws(RepositoryError) in
            try of(object.key, in: object.store, like: recorded, isCancelled: isCancelled, reading: reading)
        }
    }

    /// Runs `read` on NIO's I/O thread pool; cancelling the task makes `read`'s `isCancelled` say yes.
    private static func offThePool(
        _ read: @escaping @Sendable (_ isCancelled: () -> Bool) throws(RepositoryError) -> String
    ) async throws(RepositoryError) -> String {
        let cancelled = CancellationFlag()
        let outcome = await withTaskCancellationHandler { () async -> Result<String, RepositoryError> in
            do throws(RepositoryError) {
                return .success(
                    try await BlockingWork.run { () throws(RepositoryError) -> String in
                        try read { cancelled.isSet }
                    })
            } catch {
                return .failure(error)
            }
        } onCancel: {
            cancelled.set()
        }
        return try outcome.get()
    }

    /// Reads `path` from start to end and returns its digest in the form of `recorded` (a whole file's when nil).
    /// Blocking: call it from a thread of its own, not from Swift's cooperative pool. `isCancelled` is asked between
    /// reads (an image can take minutes); when it says yes, the read stops with ``RepositoryError/Code/cancelled``.
    /// The file is read through a folder store of its folder: a symbolic link is not followed, and a FIFO or device
    /// is refused before anything is read (a FIFO would block, and /dev/zero would be read forever).
    public static func ofFile(
        _ path: String, like recorded: String? = nil, isCancelled: () -> Bool = { false },
        reading: (Int) -> Void = { _ in }
    ) throws(RepositoryError) -> String {
        let (store, key) = try folderObject(path)
        return try of(key, in: store, like: recorded, isCancelled: isCancelled, reading: reading)
    }

    /// The file at `path` as an object of a folder store of its folder, so that it is read as the store reads: no
    /// symbolic link followed, no FIFO or device read.
    private static func folderObject(_ path: String) throws(RepositoryError) -> (FolderStore, ObjectKey) {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = String(slash.map { path[path.index(after: $0)...] } ?? path[...])
        let key = try storeStep { () throws(StoreError) in try ObjectKey(components: [name]) }
        return (FolderStore(root: folder), key)
    }

    /// Opens `layer`'s image, a file or an object of a store, for reading as ``of(_:like:reading:)`` reads it.
    package static func reader(of layer: ImageLayer) throws(RepositoryError) -> any ObjectReader {
        let (store, key): (any ObjectStore, ObjectKey) =
            if let object = layer.object { (object.store, object.key) } else { try folderObject(layer.path) }
        guard let reader = try storeStep({ () throws(StoreError) in try store.open(key) }) else {
            throw RepositoryError(
                .io, "cannot open \(layer.path): \(Errno.noSuchFileOrDirectory)", cause: Errno.noSuchFileOrDirectory)
        }
        return reader
    }

    /// Reads the object `key` of `store` from start to end and returns its digest in the form of `recorded` (a
    /// whole object's when nil), as ``ofFile(_:like:isCancelled:reading:)`` does for a file.
    public static func of(
        _ key: ObjectKey, in store: any ObjectStore, like recorded: String? = nil, isCancelled: () -> Bool = { false },
        reading: (Int) -> Void = { _ in }
    ) throws(RepositoryError) -> String {
        let location = store.location(of: key)
        guard let reader = try storeStep({ () throws(StoreError) in try store.open(key) }) else {
            throw RepositoryError(
                .io, "cannot open \(location): \(Errno.noSuchFileOrDirectory)", cause: Errno.noSuchFileOrDirectory)
        }
        return try of(reader: reader, location: location, like: recorded, isCancelled: isCancelled, reading: reading)
    }

    /// Reads `reader`'s object (at `location`, for messages) from start to end, in order, and returns its digest in
    /// the form of `recorded`, as ``of(_:in:like:isCancelled:reading:)`` does for an object it opens.
    static func of(
        reader: any ObjectReader, location: String, like recorded: String?, isCancelled: () -> Bool,
        reading: (Int) -> Void
    ) throws(RepositoryError) -> String {
        // Read once, in order: the store reads ahead, and the pages are of no further use to the backup.
        reader.readsOnceInOrder()
        var digest = DigestReading(reader: reader, location: location)
        guard let split = recorded.flatMap(splitLength(of:)) else {
            var whole = SHA256()
            try digest.hash(upTo: .max, into: &whole, isCancelled: isCancelled, reading: reading)
            return prefix + Hex.encode(whole.finalize())
        }
        // A file shorter than the first part gets the digest of what there is, which cannot match a recorded one.
        var head = SHA256()
        try digest.hash(upTo: UInt64(split), into: &head, isCancelled: isCancelled, reading: reading)
        var tail = SHA256()
        let piecewise = recorded?.hasPrefix(piecesPrefix) == true
        if piecewise {
            try digest.hashPieces(into: &tail, isCancelled: isCancelled, reading: reading)
            // The tail's length last, as the writer hashes it: padding must not hide a cut or added zero.
            withUnsafeBytes(of: (digest.offset - UInt64(split)).bigEndian) { tail.update(bufferPointer: $0) }
        } else {
            try digest.hash(upTo: .max, into: &tail, isCancelled: isCancelled, reading: reading)
        }
        return Self.recorded(
            headLength: split, head: Array(head.finalize()), tail: Array(tail.finalize()), piecewise: piecewise)
    }

    private static func isHex(_ text: Substring) -> Bool {
        text.utf8.count == 64
            && text.utf8.allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
                    || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
    }
}

/// Set once, read from any thread.
private final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}
