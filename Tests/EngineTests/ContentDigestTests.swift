import Crypto
import Engine
import Foundation
import TestSupport
import Testing

/// Content digests of images made by qemu-img and qemu-io, each compared with an independent computation from the
/// specification (``ContentDigestReference``, a Python script reading the raw bytes), so that a digest that is merely consistent with itself
/// cannot pass.
@Suite(.timeLimit(.minutes(3)))
struct ContentDigestTests {
    static func referenceDigest(of image: String, size: UInt64, in dir: String) async throws -> String {
        let raw = dir + "/reference.raw"
        try await runTool(["qemu-img", "convert", "-O", "raw", image, raw])
        defer { try? FileManager.default.removeItem(atPath: raw) }
        let script = try ContentDigestReference.writeScript(into: dir)
        return try await runTool(["python3", script, raw, String(size)]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(
        "qcow2 chains and raw images with data, zeros, holes and a short last block digest as the specification computes"
    )
    func matchesTheSpecification() async throws {
        let directory = try TemporaryDirectory("pbdigest")
        defer { directory.remove() }
        let dir = directory.path
        let base = dir + "/base.qcow2"
        let top = dir + "/top.qcow2"
        let size: UInt64 = 40 * 65536 + 3 * 512
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", base, String(size)])
        try await runTool([
            "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 300k", "-c", "write -P 0x22 2M 100k",
            "-c", "write -P 0x5a \(size - 700) 700", base,
        ])
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top])
        try await runTool(["qemu-io", "-f", "qcow2", "-c", "write -z 64k 128k", "-c", "write -P 0x33 1M 3", top])
        let raw = dir + "/top.raw"
        try await runTool(["qemu-img", "convert", "-O", "raw", top, raw])

        let expected = try await Self.referenceDigest(of: top, size: size, in: dir)
        let ofTop = try await ContentDigest.ofImage(path: top)
        let ofRaw = try await ContentDigest.ofImage(path: raw)
        let ofBase = try await ContentDigest.ofImage(path: base)
        let expectedBase = try await Self.referenceDigest(of: base, size: size, in: dir)
        #expect(ofTop == expected)
        #expect(ofRaw == expected)
        #expect(ofBase == expectedBase)
        #expect(ofTop != ofBase)

        // One byte changed: another digest.
        try await runTool(["qemu-io", "-f", "raw", "-c", "write -P 0x34 \(1 << 20) 1", raw])
        let changed = try await ContentDigest.ofImage(path: raw)
        #expect(changed != expected)
    }

    @Test("a 512 MiB disk of holes with data in its last blocks: zeros skipped a node at a time, the same digest")
    func sparseDisks() async throws {
        let directory = try TemporaryDirectory("pbdigest")
        defer { directory.remove() }
        let dir = directory.path
        let image = dir + "/sparse.qcow2"
        let size: UInt64 = 512 << 20
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", image, String(size)])
        let empty = try await ContentDigest.ofImage(path: image)
        let expectedEmpty = try await Self.referenceDigest(of: image, size: size, in: dir)
        #expect(empty == expectedEmpty)
        try await runTool(["qemu-io", "-f", "qcow2", "-c", "write -P 0x77 \(size - 200_000) 200000", image])
        let written = try await ContentDigest.ofImage(path: image)
        let expectedWritten = try await Self.referenceDigest(of: image, size: size, in: dir)
        #expect(written == expectedWritten)
        #expect(BlockHashTable(size: size).digest == empty)
    }

    @Test("deep trees: hashes given sparsely over 2 million blocks give the root of a level-by-level computation")
    func deepTrees() {
        let count: UInt64 = 2_000_000
        let given: [UInt64: BlockHash] = [
            3: Self.hash(4), 70_000: Self.hash(1), 65_536 * 20 + 5: Self.hash(2), count - 1: Self.hash(3),
        ]
        var tree = ContentTree(blockCount: count)
        for index in given.keys.sorted() { tree.add(given[index]!, at: index) }
        #expect(tree.finish() == Self.naiveRoot(count: count, given: given))

        var small = ContentTree(blockCount: 1)
        #expect(small.finish() == .zero, "one block: its hash is the root")
    }

    static func hash(_ byte: UInt8) -> BlockHash {
        [UInt8](repeating: byte, count: 100).withUnsafeBytes { BlockHash(of: $0) }
    }

    /// Every level computed in full, zero blocks included: what the tree must equal however it skips.
    static func naiveRoot(count: UInt64, given: [UInt64: BlockHash]) -> BlockHash {
        var level = (0..<count).map { given[$0] ?? .zero }
        while level.count > 1 {
            level = stride(from: 0, to: level.count, by: 256).map { start in
                var bytes: [UInt8] = []
                for hash in level[start..<min(start + 256, level.count)] { bytes += hash.bytes }
                return BlockHash(bytes: Array(SHA256.hash(data: bytes)))
            }
        }
        return level[0]
    }

    @Test("block hash files read back what was written; damaged or forged ones are refused, never trusted")
    func blockHashFiles() async throws {
        let directory = try TemporaryDirectory("pbdigest")
        defer { directory.remove() }
        let image = directory.path + "/disk.qcow2"
        let size: UInt64 = 64 << 20
        try await runTool(["qemu-img", "create", "-q", "-f", "qcow2", image, String(size)])
        try await runTool(["qemu-io", "-f", "qcow2", "-c", "write -P 1 0 200k", "-c", "write -P 2 10M 64k", image])
        let source = try await QCOW2ChainSource.open(path: image)
        let table = try await ContentDigest.table(of: source)
        #expect(table.indices == [0, 1, 2, 3, 160])
        let bytes = BlockHashFile.encode(table)
        let expectedCount = 32 + 2 * 16 + 5 * 32  // header, two runs, five hashes
        #expect(bytes.count == expectedCount)
        #expect(BlockHashFile.decode(bytes, size: size) == table)
        #expect(BlockHashFile.decode(bytes, size: size + 512) == nil, "another disk size")
        #expect(BlockHashFile.decode(Array(bytes.dropLast()), size: size) == nil, "truncated")
        var overlapping = bytes
        overlapping[32 + 16 + 4 * 32 + 7] = 2  // the second run starts inside the first
        #expect(BlockHashFile.decode(overlapping, size: size) == nil)
        var beyond = bytes
        beyond[32 + 16 + 4 * 32 + 2] = 0xff  // a run past the disk's end
        #expect(BlockHashFile.decode(beyond, size: size) == nil)
        var huge = bytes
        huge[32 + 8] = 0xff  // a count that no file holds
        #expect(BlockHashFile.decode(huge, size: size) == nil)
        var zero = bytes
        for index in 48..<80 { zero[index] = BlockHash.zero.bytes[index - 48] }  // a zero block listed
        #expect(BlockHashFile.decode(zero, size: size) == nil)
        #expect(BlockHashFile.decode([UInt8](repeating: 0, count: 64), size: size) == nil)
    }
}
