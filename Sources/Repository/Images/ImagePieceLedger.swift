import Crypto
import FileIO
import Foundation
import QCOW2
import Storage
import Synchronization
import SystemPackage

/// The `sha256-pieces` digest of one image (``ImageDigest``), gathered from the reads a restore makes anyway, so that
/// a restore checks its images without reading each a second time (from a bucket, that second read doubled the
/// bytes fetched, and the time).
///
/// Each 64 KiB piece that a read holds whole is hashed from the very bytes the restore then uses; a piece read again
/// must hash the same, or the image counts as damaged. ``finish(reading:)`` reads what the restore never did (the
/// image's tables, clusters that newer images replace) and compares the whole with the recorded digest. Each piece's
/// hash waits in a ``PieceHashFile``, 32 bytes a piece (1/2048 of the image), so memory stays that of one bit a
/// piece whatever the image's size.
package final class ImagePieceLedger: ImageReadObserver {
    /// The image, for messages.
    package let path: String
    private let recorded: String
    private let headLength: Int
    private let size: UInt64
    private let pieceCount: Int
    private let file: PieceHashFile
    /// Where this image's hashes start in the file.
    private let base: UInt64
    private let state: Mutex<State>

    private struct State {
        /// One bit a piece: whether its hash is in the file.
        var hashed: [UInt64]
        /// The first `headLength` bytes, once a read held them whole.
        var head: [UInt8]?
        /// A piece, or the head, read twice with different bytes; or the hash file failed.
        var problem: String?
    }

    /// A ledger for `layer` of `size` bytes when its recorded digest is by pieces; nil when it has none or another
    /// form, which a ledger cannot check (the caller reads such an image whole instead). Its hashes go into `file`,
    /// from where the file ended.
    /// An image over 64 PiB is refused: no disk is that large, and the hashes' regions of a whole chain must add up
    /// without overflow.
    package init?(_ layer: ImageLayer, size: UInt64, hashesIn file: PieceHashFile) throws(RepositoryError) {
        guard Self.canCheck(layer), let recorded = layer.recordedDigest,
            let headLength = ImageDigest.splitLength(of: recorded)
        else { return nil }
        guard size <= Self.largestImage else {
            throw RepositoryError(.corrupt, "\(layer.path) is \(size) bytes, more than an image can be (64 PiB)")
        }
        let tail = size > UInt64(headLength) ? size - UInt64(headLength) : 0
        let pieces = (tail + UInt64(ImageDigest.pieceSize) - 1) / UInt64(ImageDigest.pieceSize)
        self.path = layer.path
        self.recorded = recorded
        self.headLength = headLength
        self.size = size
        self.pieceCount = Int(pieces)
        self.file = file
        self.base = file.reserve(bytes: pieces * 32)
        self.state = Mutex(State(hashed: Array(repeating: 0, count: (Int(pieces) + 63) / 64)))
    }

    static let largestImage: UInt64 = 1 << 56

    /// Whether `layer`'s recorded digest is one a ledger checks: by pieces.
    package static func canCheck(_ layer: ImageLayer) -> Bool {
        guard let recorded = layer.recordedDigest else { return false }
        return recorded.hasPrefix(ImageDigest.piecesPrefix) && ImageDigest.splitLength(of: recorded) != nil
    }

    // MARK: Observing reads

    /// Hashes the whole pieces `bytes` holds (and the head, when it holds all of it); see the type's description.
    package func observe(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) {
        let end = offset + UInt64(bytes.count)
        if offset == 0, bytes.count >= headLength { record(head: Array(bytes[..<headLength])) }
        let pieceSize = UInt64(ImageDigest.pieceSize)
        let base = UInt64(headLength)
        // The first piece that starts at or after `offset`, and the pieces that end within the read (the last piece
        // ends at the image's end).
        let first = offset <= base ? 0 : (offset - base + pieceSize - 1) / pieceSize
        var pieces: [(index: Int, hash: [UInt8])] = []
        var index = first
        while index < UInt64(pieceCount) {
            let start = base + index * pieceSize
            let stop = min(start + pieceSize, size)
            guard stop <= end else { break }
            let slice = UnsafeRawBufferPointer(rebasing: bytes[Int(start - offset)..<Int(stop - offset)])
            pieces.append((Int(index), Self.pieceHash(slice)))
            index += 1
        }
        if !pieces.isEmpty { record(pieces) }
    }

    /// A piece's hash: its bytes, padded with zeros to a whole piece (only the image's last piece is short).
    private static func pieceHash(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bufferPointer: bytes)
        if bytes.count < ImageDigest.pieceSize {
            hasher.update(data: [UInt8](repeating: 0, count: ImageDigest.pieceSize - bytes.count))
        }
        return Array(hasher.finalize())
    }

    private func record(head bytes: [UInt8]) {
        state.withLock { state in
            if let head = state.head {
                if head != bytes { state.problem = state.problem ?? "reads differently each time (its header)" }
            } else {
                state.head = bytes
            }
        }
    }

    /// Writes the hashes of pieces not hashed before, compares those that were.
    private func record(_ pieces: [(index: Int, hash: [UInt8])]) {
        state.withLock { state in
            for (index, hash) in pieces where state.problem == nil {
                let (word, bit) = (index / 64, UInt64(1) << UInt64(index % 64))
                do throws(Errno) {
                    if state.hashed[word] & bit == 0 {
                        try file.descriptor.write(hash, at: base + UInt64(index) * 32)
                        state.hashed[word] |= bit
                    } else if try storedHash(of: index) != hash {
                        let offset = UInt64(headLength) + UInt64(index) * UInt64(ImageDigest.pieceSize)
                        state.problem = "reads differently each time (at offset \(offset))"
                    }
                } catch {
                    state.problem = "could not be checked: the restore's folder could not keep its digest (\(error))"
                }
            }
        }
    }

    /// The hash of piece `index` as recorded in the file.
    private func storedHash(of index: Int) throws(Errno) -> [UInt8] {
        var hash = [UInt8](repeating: 0, count: 32)
        let count = try hash.withUnsafeMutableBytes { buffer in
            Result { () throws(Errno) in try file.descriptor.read(into: buffer, at: base + UInt64(index) * 32) }
        }.get()
        return count == 32 ? hash : []
    }

    // MARK: Finishing

    /// Reads from `image` what no read held whole, then returns nil when the image matches its recorded digest, else
    /// what is wrong with it, a phrase to follow its name ("does not match the digest its point recorded"). Blocking:
    /// call it off Swift's cooperative pool.
    package func finish(reading image: any ObjectReader, onRead: (Int) -> Void = { _ in }) throws(RepositoryError)
        -> String?
    {
        if state.withLock({ $0.head == nil }) {
            var head = [UInt8](repeating: 0, count: headLength)
            let count = try head.withUnsafeMutableBytes { buffer in
                Result { () throws(RepositoryError) in try readFully(image, into: buffer, at: 0) }
            }.get()
            onRead(count)
            observe(UnsafeRawBufferPointer(start: head, count: count), at: 0)
            if count < headLength { return "is shorter than its header" }
        }
        try readMissingPieces(image, onRead: onRead)
        let (head, problem) = state.withLock { ($0.head, $0.problem) }
        if let problem { return problem }
        var tail = SHA256()
        try hashStoredHashes(into: &tail)
        let length = size > UInt64(headLength) ? size - UInt64(headLength) : 0
        withUnsafeBytes(of: length.bigEndian) { tail.update(bufferPointer: $0) }
        let digest = ImageDigest.recorded(
            headLength: headLength, head: Array(SHA256.hash(data: head ?? [])), tail: Array(tail.finalize()),
            piecewise: true)
        return digest == recorded ? nil : "does not match the digest its point recorded"
    }

    /// Reads each run of pieces no read held whole, 4 MiB at a time, through ``observe(_:at:)``; `onRead` is told each
    /// read's length.
    private func readMissingPieces(_ image: any ObjectReader, onRead: (Int) -> Void) throws(RepositoryError) {
        let chunkPieces = 64
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: chunkPieces * ImageDigest.pieceSize, alignment: 4096)
        defer { buffer.deallocate() }
        var index = 0
        while let start = nextMissing(from: index) {
            var stop = start + 1
            while stop < pieceCount, stop - start < chunkPieces, isMissing(stop) { stop += 1 }
            let offset = UInt64(headLength) + UInt64(start) * UInt64(ImageDigest.pieceSize)
            let length = Int(min(UInt64(stop - start) * UInt64(ImageDigest.pieceSize), size - offset))
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[..<length])
            let count = try readFully(image, into: target, at: offset)
            guard count == length else {
                throw RepositoryError(.io, "\(path) ended at \(offset + UInt64(count)) where it has \(size) bytes")
            }
            onRead(count)
            observe(UnsafeRawBufferPointer(target), at: offset)
            index = stop
        }
    }

    /// ``ObjectReader/readFully(into:at:)`` with the failure as the ledger's error.
    private func readFully(
        _ image: any ObjectReader, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64
    ) throws(RepositoryError) -> Int {
        do throws(StoreError) { return try image.readFully(into: buffer, at: offset) } catch {
            throw RepositoryError(.io, "cannot read \(path): \(error.message)", cause: error)
        }
    }

    private func isMissing(_ index: Int) -> Bool {
        state.withLock { $0.hashed[index / 64] & (UInt64(1) << UInt64(index % 64)) == 0 }
    }

    private func nextMissing(from index: Int) -> Int? {
        var index = index
        while index < pieceCount {
            if isMissing(index) { return index }
            index += 1
        }
        return nil
    }

    /// Feeds the pieces' hashes, in order, into `tail`.
    private func hashStoredHashes(into tail: inout SHA256) throws(RepositoryError) {
        let chunk = 4 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: UInt64 = 0
        let total = UInt64(pieceCount) * 32
        while offset < total {
            let length = Int(min(UInt64(chunk), total - offset))
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[..<length])
            var done = 0
            while done < length {
                let count: Int
                do throws(Errno) {
                    count = try file.descriptor.read(
                        into: UnsafeMutableRawBufferPointer(rebasing: target[done...]),
                        at: base + offset + UInt64(done))
                } catch {
                    throw RepositoryError(.io, "cannot read back the digest of \(path): \(error)", cause: error)
                }
                guard count > 0 else {
                    throw RepositoryError(.io, "the digest of \(path) was cut short in the restore's folder")
                }
                done += count
            }
            tail.update(bufferPointer: UnsafeRawBufferPointer(target))
            offset += UInt64(length)
        }
    }
}
