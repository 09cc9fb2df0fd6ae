import Crypto
import Synchronization

/// The SHA-256 of an image file in two parts: its first `headLength` bytes (the header cluster) and the rest.
///
/// The writer appends everything but the header in file order, so it can hash the rest from the buffers it writes,
/// as it writes them; only the header, written last, needs a hash of its own. No byte is read back, which for a
/// backup of a large disk would mean reading it all again from the disk. Anyone can check both parts with coreutils:
/// `head -c HEAD FILE | sha256sum` and `tail -c +$((HEAD + 1)) FILE | sha256sum`.
public struct SplitDigest: Sendable, Equatable {
    /// Bytes in the first part.
    public var headLength: Int
    /// SHA-256 of the first `headLength` bytes (zeros past the file's end, which a finalized image never has).
    public var head: [UInt8]
    /// SHA-256 of the bytes after the first `headLength`.
    public var tail: [UInt8]

    public init(headLength: Int, head: [UInt8], tail: [UInt8]) {
        self.headLength = headLength
        self.head = head
        self.tail = tail
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
    }

    private let headLength: Int
    private let state: Mutex<State>

    init(headLength: Int) {
        self.headLength = headLength
        state = Mutex(State(nextOffset: UInt64(headLength)))
    }

    /// Takes in `bytes`, just written at `offset`.
    func wrote(_ bytes: some Collection<UInt8>, at offset: UInt64) {
        let done = bytes.withContiguousStorageIfAvailable { wrote(UnsafeRawBufferPointer($0), at: offset) }
        if done == nil { Array(bytes).withUnsafeBytes { wrote($0, at: offset) } }
    }

    private func wrote(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) {
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
            Self.hashZeros(offset - state.nextOffset, into: &state.tail)
            state.tail.update(bufferPointer: bytes)
            state.nextOffset = offset + UInt64(bytes.count)
        }
    }

    /// The digest of a file of `fileSize` bytes once everything was written, or nil when writes came out of
    /// order or the header was never written.
    func finish(fileSize: UInt64) -> SplitDigest? {
        state.withLock { state -> SplitDigest? in
            guard !state.broken, let header = state.header, fileSize >= state.nextOffset else { return nil }
            Self.hashZeros(fileSize - state.nextOffset, into: &state.tail)
            state.nextOffset = fileSize
            state.broken = true  // finished: nothing more may be hashed
            var head = SHA256()
            head.update(data: header)
            Self.hashZeros(UInt64(headLength - header.count), into: &head)
            return SplitDigest(headLength: headLength, head: Array(head.finalize()), tail: Array(state.tail.finalize()))
        }
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
