import Crypto

/// Builds the root of a disk's hash tree from the hashes of its blocks given in block order, where every block not
/// given reads as zeros.
///
/// Level 0 holds the blocks' hashes; each node of the level above is the SHA-256 of up to ``fanOut`` consecutive
/// hashes of the level below (the last node of a level may have fewer); the single node of the top level is the
/// root. A stretch of zero blocks costs no hashing: a node whose children are all zero has a hash known in advance
/// for its level, so a hole of any size is skipped a whole node at a time. Memory is one node's children per level.
public struct ContentTree: Sendable {
    /// Children per node.
    public static let fanOut = 256

    /// Nodes per level, level 0 being the blocks; the last level has one node (or none for an empty disk).
    private let counts: [UInt64]
    /// The next position to fill on each level.
    private var positions: [UInt64]
    /// The children hashes gathered for the node being filled on each level.
    private var pending: [[UInt8]]
    private var root: BlockHash?

    /// A tree over `blockCount` blocks.
    public init(blockCount: UInt64) {
        var counts = [blockCount]
        while let last = counts.last, last > 1 {
            counts.append((last - 1) / UInt64(Self.fanOut) + 1)
        }
        self.counts = counts
        positions = Array(repeating: 0, count: counts.count)
        pending = Array(repeating: [], count: counts.count)
    }

    /// The block whose hash comes next: every block before it is given or known to be zero.
    public var nextBlock: UInt64 { positions[0] }

    /// Gives the hash of block `index`, which is at least ``nextBlock``; the blocks between read as zeros.
    public mutating func add(_ hash: BlockHash, at index: UInt64) {
        precondition(index >= positions[0] && index < counts[0], "blocks are given in order, within the disk")
        skip(level: 0, to: index)
        push(level: 0, hash)
    }

    /// The root, once every remaining block is taken to read as zeros.
    public mutating func finish() -> BlockHash {
        if counts[0] == 0 { return BlockHash(SHA256.hash(data: [UInt8]())) }
        skip(level: 0, to: counts[0])
        guard let root else { preconditionFailure("a tree with blocks has a root once they are all given") }
        return root
    }

    // MARK: Levels

    private mutating func push(level: Int, _ hash: BlockHash) {
        if counts[level] == 1 {
            root = hash
            positions[level] = 1
            return
        }
        hash.append(to: &pending[level])
        positions[level] += 1
        if pending[level].count == Self.fanOut * 32 || positions[level] == counts[level] {
            let node = BlockHash(SHA256.hash(data: pending[level]))
            pending[level].removeAll(keepingCapacity: true)
            push(level: level + 1, node)
        }
    }

    /// Fills `level` with hashes of zero subtrees up to position `target`, a whole node above at a time where it can.
    private mutating func skip(level: Int, to target: UInt64) {
        let fanOut = UInt64(Self.fanOut)
        while positions[level] < target {
            if positions[level] % fanOut == 0, counts[level] > 1 {
                let wholeNodes = (target - positions[level]) / fanOut
                if wholeNodes > 0 {
                    skip(level: level + 1, to: positions[level] / fanOut + wholeNodes)
                    positions[level] += wholeNodes * fanOut
                    continue
                }
            }
            push(level: level, Self.zeroHash(level: level))
        }
    }

    /// The hash of a full node of `level` whose blocks all read as zeros (level 0: a zero block).
    static func zeroHash(level: Int) -> BlockHash {
        zeroHashes[level]
    }

    /// Enough levels for 2^64 bytes in 64 KiB blocks (2^48 blocks, 256 children a node).
    private static let zeroHashes: [BlockHash] = {
        var hashes = [BlockHash.zero]
        for _ in 0..<8 {
            var children: [UInt8] = []
            for _ in 0..<fanOut { hashes[hashes.count - 1].append(to: &children) }
            hashes.append(BlockHash(SHA256.hash(data: children)))
        }
        return hashes
    }()
}
