import Crypto

/// The SHA-256 of one block of a disk's content, as ``ContentDigest`` defines it: the block's bytes, padded with
/// zeros to ``ContentDigest/blockSize`` when the disk ends inside it.
///
/// Four words rather than an array, so that a table of thousands of them costs no allocation each.
public struct BlockHash: Sendable, Hashable {
    var words: (UInt64, UInt64, UInt64, UInt64)

    /// The hash whose 32 bytes are `bytes` (exactly 32).
    public init(bytes: some Collection<UInt8>) {
        precondition(bytes.count == 32, "a block hash has 32 bytes")
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words) { raw in raw.copyBytes(from: bytes) }
        self.words = words
    }

    init(_ digest: SHA256.Digest) {
        self.init(bytes: Array(digest))
    }

    /// The hash of `block` (at most one block of bytes; a shorter one is the disk's last, padded with zeros).
    public init(of block: UnsafeRawBufferPointer) {
        precondition(block.count <= ContentDigest.blockSize, "a block hash covers one block")
        var hasher = SHA256()
        hasher.update(bufferPointer: block)
        if block.count < ContentDigest.blockSize {
            ContentDigest.zeroBlock.withUnsafeBytes { zeros in
                hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: zeros[block.count...]))
            }
        }
        self.init(hasher.finalize())
    }

    /// The hash of a block of zeros: what every block that reads as zeros has, without reading or hashing it.
    public static let zero = BlockHash(of: UnsafeRawBufferPointer(start: nil, count: 0))

    /// Whether this is the hash of a block of zeros.
    public var isZero: Bool { self == .zero }

    /// The 32 bytes of the hash.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: words) { Array($0) }
    }

    /// Appends the 32 bytes of the hash to `buffer`.
    func append(to buffer: inout [UInt8]) {
        withUnsafeBytes(of: words) { buffer.append(contentsOf: $0) }
    }

    public static func == (lhs: BlockHash, rhs: BlockHash) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}
