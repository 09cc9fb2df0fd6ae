import Crypto
import Synchronization

/// The SHA-256 of an image file in two parts: its first `headLength` bytes (the header cluster) and the rest.
///
/// The writer appends everything but the header in file order, so it can hash the rest from the buffers it writes,
/// as it writes them; only the header, written last, needs a hash of its own. No byte is read back, which for a
/// backup of a large disk would mean reading it all again from the disk.
///
/// The rest is hashed in one of two ways. Plainly, anyone can check both parts with coreutils: `head -c HEAD FILE |
/// sha256sum` and `tail -c +$((HEAD + 1)) FILE | sha256sum`. Piecewise (``pieceSize``), the tail is the SHA-256 of the
/// SHA-256s of its 64 KiB pieces (the last padded with zeros) and of its length (8 bytes, big-endian), so that a piece whose hash is known already (a data
/// cluster whose content digest hashed it) is not hashed again: a backup hashes each byte it copies once.
public struct SplitDigest: Sendable, Equatable {
    /// Bytes in the first part.
    public var headLength: Int
    /// SHA-256 of the first `headLength` bytes (zeros past the file's end, which a finalized image never has).
    public var head: [UInt8]
    /// SHA-256 of the bytes after the first `headLength`, or of their pieces' hashes when ``piecewise``.
    public var tail: [UInt8]
    /// Whether the tail is hashed by pieces.
    public var piecewise: Bool

    /// The pieces of a piecewise tail: the size of a content digest's block.
    public static let pieceSize = 65536

    public init(headLength: Int, head: [UInt8], tail: [UInt8], piecewise: Bool = false) {
        self.headLength = headLength
        self.head = head
        self.tail = tail
        self.piecewise = piecewise
    }
}

/// Hashes what a writer puts into its file while it writes it: the header cluster apart, every later byte in file
/// order (gaps the writer leaves read as zeros, and are hashed as such). The writer hands bytes over in file order
/// (under its lock); one out of order would make the digest unavailable rather than wrong.
final class AppendDigest: Sendable {
    private struct State: @unchecked Sendable {  // SHA256 is a plain value; the state is only touched under the lock
        var tail = SHA256()
        /// The file offset the next byte hashed into `tail` must come from.
        var nextOffset: UInt64
        var header: [UInt8]?
        var broken = false
        /// Piecewise: the bytes of the piece not yet whole.
        var piece: [UInt8] = []
    }

    private let headLength: Int
    private let piecewise: Bool
    private let state: Mutex<State>

    init(headLength: Int, piecewise: Bool = false) {
        self.headLength = headLength
        self.piecewise = piecewise
        state = Mutex(State(nextOffset: UInt64(headLength)))
    }

    /// Takes in `bytes`, just written at `offset`.
    func wrote(_ bytes: some Collection<UInt8>, at offset: UInt64) {
        let done = bytes.withContiguousStorageIfAvailable { wrote(UnsafeRawBufferPointer($0), at: offset) }
        if done == nil { Array(bytes).withUnsafeBytes { wrote($0, at: offset) } }
    }

    /// Takes in `bytes`, just written at `offset`, with `pieceHashes`: the SHA-256 of each whole 64 KiB piece of
    /// `bytes` from its start, used instead of hashing the piece again when it falls on a piece of the tail.
    func wrote(_ bytes: UnsafeRawBufferPointer, at offset: UInt64, pieceHashes: UnsafeRawBufferPointer? = nil) {
        state.withLock { state in
            guard !state.broken else { return }
            if offset < UInt64(headLength) {
                // Only the header is written there, once, and it fits.
                if offset == 0, state.header == nil, bytes.count <= headLength {
                    state.header = Array(bytes)
                } else {
                    state.broken = true
                }
                return
            }
            guard offset >= state.nextOffset else {
                state.broken = true
                return
            }
            if piecewise {
                Self.appendZeros(offset - state.nextOffset, to: &state)
                Self.append(bytes, pieceHashes: pieceHashes, to: &state)
            } else {
                Self.hashZeros(offset - state.nextOffset, into: &state.tail)
                state.tail.update(bufferPointer: bytes)
            }
            state.nextOffset = offset + UInt64(bytes.count)
        }
    }

    /// The digest of a file of `fileSize` bytes once everything was written, or nil when writes came out of
    /// order or the header was never written.
    func finish(fileSize: UInt64) -> SplitDigest? {
        state.withLock { state -> SplitDigest? in
            guard !state.broken, let header = state.header, fileSize >= state.nextOffset else { return nil }
            if piecewise {
                Self.appendZeros(fileSize - state.nextOffset, to: &state)
                if !state.piece.isEmpty {
                    state.piece += [UInt8](repeating: 0, count: SplitDigest.pieceSize - state.piece.count)
                    state.tail.update(data: Array(SHA256.hash(data: state.piece)))
                }
                // The tail's length last: padding must not let zeros be cut from or added to the end.
                withUnsafeBytes(of: (fileSize - UInt64(headLength)).bigEndian) { state.tail.update(bufferPointer: $0) }
            } else {
                Self.hashZeros(fileSize - state.nextOffset, into: &state.tail)
            }
            state.nextOffset = fileSize
            state.broken = true  // finished: nothing more may be hashed
            var head = SHA256()
            head.update(data: header)
            Self.hashZeros(UInt64(headLength - header.count), into: &head)
            return SplitDigest(
                headLength: headLength, head: Array(head.finalize()), tail: Array(state.tail.finalize()),
                piecewise: piecewise)
        }
    }

    // MARK: Pieces

    /// The hash of a piece of zeros.
    private static let zeroPieceHash = Array(SHA256.hash(data: [UInt8](repeating: 0, count: SplitDigest.pieceSize)))

    /// Adds `bytes` to a piecewise tail: whole pieces hashed (or their hash taken from `pieceHashes` when `bytes`
    /// starts on a piece), the rest kept until its piece is whole.
    private static func append(
        _ bytes: UnsafeRawBufferPointer, pieceHashes: UnsafeRawBufferPointer?, to state: inout State
    ) {
        let size = SplitDigest.pieceSize
        var position = 0
        let known = state.piece.isEmpty ? pieceHashes : nil
        if !state.piece.isEmpty {
            position = min(size - state.piece.count, bytes.count)
            state.piece += bytes[0..<position]
            guard state.piece.count == size else { return }
            state.tail.update(data: Array(SHA256.hash(data: state.piece)))
            state.piece.removeAll(keepingCapacity: true)
        }
        var index = 0
        while bytes.count - position >= size {
            if let known, known.count >= (index + 1) * 32 {
                state.tail.update(
                    bufferPointer: UnsafeRawBufferPointer(rebasing: known[(index * 32)..<(index * 32 + 32)]))
            } else {
                let piece = UnsafeRawBufferPointer(rebasing: bytes[position..<(position + size)])
                state.tail.update(data: Array(SHA256.hash(data: piece)))
            }
            position += size
            index += 1
        }
        state.piece += bytes[position...]
    }

    /// Adds `count` zeros to a piecewise tail: whole pieces of them by their known hash.
    private static func appendZeros(_ count: UInt64, to state: inout State) {
        let size = UInt64(SplitDigest.pieceSize)
        var left = count
        if !state.piece.isEmpty, left > 0 {
            let fill = Int(min(left, size - UInt64(state.piece.count)))
            state.piece += [UInt8](repeating: 0, count: fill)
            left -= UInt64(fill)
            if state.piece.count == Int(size) {
                state.tail.update(data: Array(SHA256.hash(data: state.piece)))
                state.piece.removeAll(keepingCapacity: true)
            }
        }
        while left >= size {
            state.tail.update(data: zeroPieceHash)
            left -= size
        }
        state.piece += [UInt8](repeating: 0, count: Int(left))
    }

    private static let zeros = [UInt8](repeating: 0, count: 64 << 10)

    private static func hashZeros(_ count: UInt64, into hasher: inout SHA256) {
        var left = count
        while left > 0 {
            let chunk = Int(min(left, UInt64(zeros.count)))
            zeros.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<chunk])) }
            left -= UInt64(chunk)
        }
    }
}
