import Synchronization

/// A target that hashes every block written to it before passing the write on, so that a copy yields the content
/// digest of what it made without reading anything again.
///
/// Its granularity is a whole number of ``ContentDigest/blockSize`` blocks, so every write and zero covers whole blocks
/// (the disk's last may be short) and each block is hashed from the one buffer that holds it. What is never written
/// keeps the hash it has in `base`: the parent point's, for an incremental copy; zero for a new target.
public final class HashingTarget<Inner: BlockTarget>: BlockTarget {
    /// The target the writes go to.
    public let inner: Inner
    private let size: UInt64
    /// The blocks written and not yet settled, the table built from the base and them below where the copy has
    /// settled, and whether a write ever covered a block in part (then no digest can be given).
    private let state: Mutex<(changes: [UInt64: BlockHash], merge: BlockHashTable.Merge, partial: Bool)>

    /// Hashes what is written to `inner`, a target of `size` bytes that reads as `base` where nothing is written.
    public init(_ inner: Inner, size: UInt64, base: BlockHashTable?) {
        self.inner = inner
        self.size = size
        state = Mutex(([:], BlockHashTable.Merge(base: base ?? BlockHashTable(size: size), size: size), false))
    }

    public var granularity: Int {
        let unit = inner.granularity
        return unit / greatestCommonDivisor(unit, ContentDigest.blockSize) * ContentDigest.blockSize
    }

    public var previousEnd: UInt64? { inner.previousEnd }

    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws(CopyError) {
        var hashes: [(UInt64, BlockHash)] = []
        var partial = false
        let blockSize = ContentDigest.blockSize
        if offset % UInt64(blockSize) == 0 {
            var start = 0
            while start < bytes.count {
                let end = min(start + blockSize, bytes.count)
                if end - start < blockSize, offset + UInt64(end) != size { partial = true }
                hashes.append(
                    (
                        (offset + UInt64(start)) / UInt64(blockSize),
                        BlockHash(of: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                    ))
                start = end
            }
        } else {
            partial = true
        }
        record(hashes, partial: partial)
        // The hashes of the whole blocks, for a target that hashes what it writes (an image's file digest).
        let whole = hashes.indices.filter { ($0 + 1) * blockSize <= bytes.count }
        let pieces = UnsafeMutableRawBufferPointer.allocate(byteCount: whole.count * 32, alignment: 8)
        defer { pieces.deallocate() }
        for number in whole {
            withUnsafeBytes(of: hashes[number].1.words) {
                pieces[(number * 32)..<(number * 32 + 32)].copyBytes(from: $0)
            }
        }
        try await inner.write(bytes, at: offset, pieceHashes: UnsafeRawBufferPointer(pieces))
    }

    public func writeZeros(at offset: UInt64, length: UInt64) async throws(CopyError) {
        let blockSize = UInt64(ContentDigest.blockSize)
        let end = offset + length
        let whole = offset % blockSize == 0 && (end % blockSize == 0 || end == size)
        let blocks = whole ? offset / blockSize..<ContentDigest.blockCount(forSize: end) : 0..<0
        record(blocks.map { ($0, BlockHash.zero) }, partial: !whole)
        try await inner.writeZeros(at: offset, length: length)
    }

    /// Passes the news on, and moves the blocks below `offset`, which nothing writes again, into the table.
    public func settled(below offset: UInt64) async throws(CopyError) {
        try await inner.settled(below: offset)
        state.withLock { state in
            state.merge.advance(below: offset / UInt64(ContentDigest.blockSize), taking: &state.changes)
        }
    }

    /// The table of what the target now holds, or nil when a write covered part of a block only.
    public func table() -> BlockHashTable? {
        state.withLock { state in
            state.merge.advance(below: .max, taking: &state.changes)
            return state.partial ? nil : state.merge.result
        }
    }

    private func record(_ hashes: [(UInt64, BlockHash)], partial: Bool) {
        state.withLock { state in
            for (index, hash) in hashes {
                // A block written after the copy said it was settled is not in the table: no digest then.
                if index < state.merge.done { state.partial = true }
                state.changes[index] = hash
            }
            if partial { state.partial = true }
        }
    }

    private func greatestCommonDivisor(_ a: Int, _ b: Int) -> Int {
        b == 0 ? a : greatestCommonDivisor(b, a % b)
    }
}

/// A target that keeps nothing: what a digest of a source copies into.
public struct DiscardingTarget: BlockTarget {
    public init() {}
    public func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) async throws(CopyError) {}
    public func writeZeros(at offset: UInt64, length: UInt64) async throws(CopyError) {}
}
