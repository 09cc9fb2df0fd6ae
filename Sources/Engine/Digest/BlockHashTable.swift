/// The block hashes of one disk at one point: the hash of every block that does not read as zeros, in block order
/// (a block not listed reads as zeros). What a point keeps beside its images, so that the next point's digest needs
/// only its own changed blocks.
public struct BlockHashTable: Sendable, Equatable {
    /// The disk's size in bytes.
    public let size: UInt64
    /// The blocks listed, increasing.
    public private(set) var indices: [UInt64]
    /// The hash of each listed block, none of them ``BlockHash/zero``.
    public private(set) var hashes: [BlockHash]

    /// A table of a disk of `size` bytes that reads as zeros.
    public init(size: UInt64) {
        self.size = size
        indices = []
        hashes = []
    }

    /// The disk's blocks, the last one possibly short.
    public var blockCount: UInt64 { ContentDigest.blockCount(forSize: size) }

    /// The content digest of the disk the table describes.
    public var digest: String {
        var tree = ContentTree(blockCount: blockCount)
        for (index, hash) in zip(indices, hashes) { tree.add(hash, at: index) }
        return ContentDigest.string(size: size, root: tree.finish())
    }

    /// Appends block `index`'s hash; `index` is past every block listed. A zero hash is not listed.
    mutating func append(_ hash: BlockHash, at index: UInt64) {
        precondition(index < blockCount && (indices.last.map { index > $0 } ?? true), "blocks are appended in order")
        guard !hash.isZero else { return }
        indices.append(index)
        hashes.append(hash)
    }

    /// This table resized to `size` with the blocks in `changes` replaced: what a point holds over its parent. A disk
    /// grown since reads as zeros past its old end, which the zero padding of a short last block already says.
    public func updated(size: UInt64, with changes: [UInt64: BlockHash]) -> BlockHashTable {
        var merge = Merge(base: self, size: size)
        var changes = changes
        merge.advance(below: merge.result.blockCount, taking: &changes)
        return merge.result
    }

    /// A table built from a base table and changes to it, a stretch of blocks at a time in block order, so that the
    /// changes need only be held until their stretch is done.
    struct Merge: Sendable {
        let base: BlockHashTable
        /// What is built so far: every block below ``done``.
        private(set) var result: BlockHashTable
        /// The first block of the base not yet taken.
        private var cursor = 0
        /// The blocks below this one are in ``result``.
        private(set) var done: UInt64 = 0

        init(base: BlockHashTable, size: UInt64) {
            self.base = base
            result = BlockHashTable(size: size)
        }

        /// Takes every block below `limit` (capped at the table's end): from `changes` where they have it (removing
        /// it there), else from the base.
        mutating func advance(below limit: UInt64, taking changes: inout [UInt64: BlockHash]) {
            let limit = min(limit, result.blockCount)
            guard limit > done else { return }
            let changed = changes.keys.filter { $0 >= done && $0 < limit }.sorted()
            var next = 0
            while cursor < base.indices.count, base.indices[cursor] < limit {
                let index = base.indices[cursor]
                while next < changed.count, changed[next] < index {
                    result.append(changes[changed[next]]!, at: changed[next])
                    next += 1
                }
                if next < changed.count, changed[next] == index {
                    result.append(changes[index]!, at: index)
                    next += 1
                } else {
                    result.append(base.hashes[cursor], at: index)
                }
                cursor += 1
            }
            for index in changed[next...] { result.append(changes[index]!, at: index) }
            for index in changed { changes[index] = nil }
            done = limit
        }
    }

    /// The blocks whose hashes differ between this table and `other` (of the same size), increasing.
    public func differingBlocks(from other: BlockHashTable) -> [UInt64] {
        var result: [UInt64] = []
        var (left, right) = (0, 0)
        while left < indices.count || right < other.indices.count {
            let leftIndex = left < indices.count ? indices[left] : .max
            let rightIndex = right < other.indices.count ? other.indices[right] : .max
            if leftIndex == rightIndex {
                if hashes[left] != other.hashes[right] { result.append(leftIndex) }
                left += 1
                right += 1
            } else if leftIndex < rightIndex {
                result.append(leftIndex)
                left += 1
            } else {
                result.append(rightIndex)
                right += 1
            }
        }
        return result
    }
}
