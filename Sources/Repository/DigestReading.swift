import Crypto
import Storage

/// One pass over an object for its ``ImageDigest``: reads in order, in chunks of ``chunk`` bytes into one buffer,
/// asking `isCancelled` between reads whether to stop and telling `reading` how much each read brought.
struct DigestReading: ~Copyable {
    static let chunk = 4 << 20

    let reader: any ObjectReader
    let location: String
    /// How far the object has been read.
    private(set) var offset: UInt64 = 0
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)

    init(reader: any ObjectReader, location: String) {
        self.reader = reader
        self.location = location
    }

    deinit {
        buffer.deallocate()
    }

    /// Reads into `buffer[range]` once at the current offset; 0 at the end of the object.
    private mutating func read(
        _ range: Range<Int>, isCancelled: () -> Bool, reading: (Int) -> Void
    ) throws(RepositoryError) -> Int {
        if isCancelled() { throw RepositoryError(.cancelled, "reading \(location) for its digest was interrupted") }
        let target = UnsafeMutableRawBufferPointer(rebasing: buffer[range])
        let count = try storeStep { () throws(StoreError) in try reader.read(into: target, at: offset) }
        offset += UInt64(count)
        reading(count)
        return count
    }

    /// Hashes the object from the current offset up to `end` or its end, whichever comes first.
    mutating func hash(
        upTo end: UInt64, into hasher: inout SHA256, isCancelled: () -> Bool, reading: (Int) -> Void
    ) throws(RepositoryError) {
        while offset < end {
            let count = try read(
                0..<Int(min(UInt64(Self.chunk), end - offset)), isCancelled: isCancelled, reading: reading)
            if count == 0 { return }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }

    /// Hashes the rest of the object by pieces of ``ImageDigest/pieceSize`` (the last padded with zeros): each piece
    /// on its own, and its hash into `tail`. A chunk of whole pieces is read at a time (the last may be short).
    mutating func hashPieces(
        into tail: inout SHA256, isCancelled: () -> Bool, reading: (Int) -> Void
    ) throws(RepositoryError) {
        let pieceSize = ImageDigest.pieceSize
        while true {
            var filled = 0
            while filled < Self.chunk {
                let count = try read(filled..<Self.chunk, isCancelled: isCancelled, reading: reading)
                if count == 0 { break }
                filled += count
            }
            var start = 0
            while start < filled {
                let end = min(start + pieceSize, filled)
                var piece = SHA256()
                piece.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[start..<end]))
                if end - start < pieceSize {
                    piece.update(data: [UInt8](repeating: 0, count: pieceSize - (end - start)))
                }
                tail.update(data: Array(piece.finalize()))
                start = end
            }
            if filled < Self.chunk { return }
        }
    }
}
