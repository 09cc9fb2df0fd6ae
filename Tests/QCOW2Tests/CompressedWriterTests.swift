import Foundation
import Synchronization
import TestSupport
import Testing

@testable import QCOW2

/// Images the writer compresses with zstd and deflate, judged by qemu-img: `check` finds no error and no leak (so the
/// refcounts of host clusters that several compressed clusters share are exact), `convert` reads back what was
/// written, the header says the compression type; deflate images read through pullback's own reader as well (zstd
/// reading is not there yet).
@Suite("QCOW2Writer compressed", .timeLimit(.minutes(3)))
struct CompressedWriterTests {
    /// What a cluster holds: compressible in several ways, or not at all.
    enum Kind: CaseIterable {
        case random, text, pattern, zero, halfRandom
    }

    /// One call to ``QCOW2Writer/writeCompressed(_:from:at:)``: `bytes` at `offset`, whole clusters or ending in the
    /// image's last cluster.
    struct Write {
        var offset: UInt64
        var bytes: [UInt8]
    }

    static let compressions: [ClusterCompression] = [.zstd(level: 3), .deflate(level: 6)]

    /// The kinds of successive clusters, over and over: between two random ones, seven that compress, three of them
    /// to about half a cluster, so that compressed clusters run on from one host cluster into the next.
    static let cycle: [Kind] = [.random, .text, .halfRandom, .pattern, .halfRandom, .zero, .halfRandom, .text]

    /// A cluster of `kind`, different for each `index`.
    static func cluster(_ kind: Kind, index: Int, size: Int, _ generator: inout SeededRandom) -> [UInt8] {
        switch kind {
        case .random: return generator.bytes(size)
        case .text:
            let line = Array("cluster \(index): the quick brown fox jumps over the lazy dog\n".utf8)
            return (0..<size).map { line[$0 % line.count] }
        case .pattern: return (0..<size).map { UInt8(truncatingIfNeeded: $0 / 7 &+ index) }
        case .zero: return [UInt8](repeating: 0, count: size)
        case .halfRandom: return generator.bytes(size / 2) + [UInt8](repeating: 0, count: size - size / 2)
        }
    }

    /// Writes `writes` in the order given, each cluster compressed first as `QCOW2FileTarget` does, settling the
    /// tables below `settle` after the first `settleAfter` writes; returns each whole cluster's compressed length (nil
    /// where it was stored as it is), by guest cluster.
    @discardableResult
    static func write(
        _ writes: [Write], to writer: QCOW2Writer, settle: (after: Int, below: UInt64)? = nil
    ) throws -> [UInt64: Int?] {
        let size = writer.clusterSize
        let compressor = ClusterCompressor(writer.compression, clusterSize: size)
        var lengths: [UInt64: Int?] = [:]
        for (number, write) in writes.enumerated() {
            if let settle, number == settle.after { try writer.settle(below: settle.below) }
            try write.bytes.withUnsafeBytes { bytes in
                let compressed = stride(from: 0, to: bytes.count, by: size).map { start -> [UInt8]? in
                    guard start + size <= bytes.count else { return nil }
                    let output = compressor?.compress(UnsafeRawBufferPointer(rebasing: bytes[start..<start + size]))
                    lengths.updateValue(output?.count, forKey: (write.offset + UInt64(start)) / UInt64(size))
                    return output
                }
                if writer.compression == .none {
                    try writer.writeClusters(bytes, at: write.offset)
                } else {
                    try writer.writeCompressed(compressed, from: bytes, at: write.offset)
                }
            }
        }
        try writer.finalize()
        return lengths
    }

    /// The guest disk `writes` make in an image of `size` bytes over `base` (zeros without one).
    static func contents(_ writes: [Write], size: UInt64, base: [UInt8]? = nil) -> [UInt8] {
        var bytes = base ?? [UInt8](repeating: 0, count: Int(size))
        for write in writes {
            bytes.replaceSubrange(Int(write.offset)..<Int(write.offset) + write.bytes.count, with: write.bytes)
        }
        return bytes
    }

    /// What `qemu-img check --output=json` counts.
    struct CheckReport: Decodable {
        let checkErrors: Int
        let corruptions: Int?
        let leaks: Int?
        let compressedClusters: Int?

        enum CodingKeys: String, CodingKey {
            case checkErrors = "check-errors"
            case corruptions
            case leaks
            case compressedClusters = "compressed-clusters"
        }
    }

    /// `qemu-img check` must exit 0 with no corruption, leak or check error; returns its counts.
    static func checkClean(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> CheckReport
    {
        let result = try await ScratchRunner().run(["qemu-img", "check", "-f", "qcow2", "--output=json", path])
        #expect(result.succeeded, "qemu-img check \(path): \(result)", sourceLocation: sourceLocation)
        let report = try JSONDecoder().decode(CheckReport.self, from: Data(result.stdout.utf8))
        #expect(
            report.checkErrors == 0 && (report.corruptions ?? 0) == 0 && (report.leaks ?? 0) == 0,
            "qemu-img check \(path): \(result.stdout)", sourceLocation: sourceLocation)
        return report
    }

    /// qemu reads `expected` from the image (through its backing chain); for deflate, pullback's reader does too.
    static func expectContents(
        _ path: String, _ expected: [UInt8], compression: ClusterCompression,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let qemu = try await Qemu.rawContents(of: path)
        #expect(qemu.count == expected.count, "qemu reads \(qemu.count) bytes", sourceLocation: sourceLocation)
        if let index = (0..<min(qemu.count, expected.count)).first(where: { qemu[$0] != expected[$0] }) {
            Issue.record(
                "\(path): qemu reads \(qemu[index]) at \(index), not \(expected[index])", sourceLocation: sourceLocation
            )
        }
        guard case .deflate = compression else { return }
        let chain = try QCOW2Chain.open(path: path)
        let ours = try chain.read(count: expected.count, at: 0)
        #expect(ours == expected, "pullback's reader reads other bytes from \(path)", sourceLocation: sourceLocation)
        try await Check.contentsMatchQemu(path, sourceLocation: sourceLocation)
    }

    /// The header's compression type (byte 104) and its incompatible-feature bit, and what `qemu-img info` says.
    static func expectHeader(
        _ path: String, _ compression: ClusterCompression, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let header = try ImageBytes.read(path)
        let incompatible = ImageBytes.u64(header, at: 72)
        let zstd = compression.description.hasPrefix("zstd")
        #expect(ImageBytes.u32(header, at: 100) >= 112, "header length", sourceLocation: sourceLocation)
        #expect(header[104] == (zstd ? 1 : 0), "compression type byte", sourceLocation: sourceLocation)
        #expect(
            (incompatible & (1 << 3) != 0) == zstd, "incompatible bits \(incompatible)", sourceLocation: sourceLocation)
        let info = try await runTool(["qemu-img", "info", "-f", "qcow2", path])
        #expect(
            info.contains("compression type: \(zstd ? "zstd" : "zlib")"), "qemu-img info: \(info)",
            sourceLocation: sourceLocation)
    }

    /// Clusters of every kind, a partial last one (but with 512-byte clusters, where a partial one cannot be whole
    /// sectors), grouped into writes of one to four clusters, each half of the image in a shuffled order, the first
    /// half's tables settled in between (which closes a half-filled host cluster of compressed data).
    static func mixedWrites(clusterBits: Int, clusters: Int, seed: UInt64) -> (writes: [Write], size: UInt64) {
        let size = 1 << clusterBits
        let partial = clusterBits > 9 ? 3 * 512 : 0
        let imageSize = UInt64(clusters * size + partial)
        var generator = SeededRandom(seed: seed)
        var data: [UInt8] = []
        for index in 0..<clusters {
            data += cluster(cycle[index % cycle.count], index: index, size: size, &generator)
        }
        data += cluster(.text, index: clusters, size: size, &generator).prefix(partial)
        var halves: [[Write]] = [[], []]
        var start = 0
        while start < clusters + (partial > 0 ? 1 : 0) {
            let count = 1 + Int(generator.next() % 4)
            let end = min(start + count, clusters + (partial > 0 ? 1 : 0))
            let range = start * size..<min(end * size, data.count)
            halves[start < clusters / 2 ? 0 : 1].append(
                Write(offset: UInt64(range.lowerBound), bytes: Array(data[range])))
            start = end
        }
        return (halves[0].shuffled(using: &generator) + halves[1].shuffled(using: &generator), imageSize)
    }

    struct Layout: Sendable, CustomTestStringConvertible {
        let compression: ClusterCompression
        let clusterBits: Int
        let clusters: Int
        var testDescription: String { "\(compression), \(1 << clusterBits)-byte clusters" }
    }

    static let layouts: [Layout] = compressions.flatMap { compression in
        [
            Layout(compression: compression, clusterBits: 16, clusters: 40),
            Layout(compression: compression, clusterBits: 9, clusters: 600),
            Layout(compression: compression, clusterBits: 21, clusters: 5),
        ]
    }

    @Test(
        "random, text, pattern and zero clusters in shuffled writes of several clusters, a partial last one: check clean, qemu reads them, smaller than uncompressed",
        arguments: layouts)
    func mixedClusters(_ layout: Layout) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let clusterSize = 1 << layout.clusterBits
        let (writes, size) = Self.mixedWrites(clusterBits: layout.clusterBits, clusters: layout.clusters, seed: 11)
        let half = UInt64(layout.clusters / 2 * clusterSize)
        let path = directory.file("compressed.qcow2")
        let writer = try QCOW2Writer(
            creating: path, size: size, clusterBits: layout.clusterBits, digesting: true,
            compression: layout.compression)
        defer { writer.close() }
        let settleAfter = writes.firstIndex { $0.offset >= half } ?? writes.count
        let lengths = try Self.write(writes, to: writer, settle: (settleAfter, half))

        let report = try await Self.checkClean(path)
        let compressed = lengths.values.filter { ($0 ?? 0) > 0 }.count
        #expect((report.compressedClusters ?? 0) == compressed, "qemu counts every compressed cluster")
        // A cluster is compressed when that saves a sector, which a 512-byte one never can; random data never does.
        // An all-zero cluster is not stored at all (the compressor says so with an empty result).
        for (guest, length) in lengths {
            let kind = Self.cycle[Int(guest) % Self.cycle.count]
            let expected: String =
                kind == .zero ? "0" : layout.clusterBits > 9 && kind != .random ? "compressed" : "nil"
            let found = length.map { $0 == 0 ? "0" : "compressed" } ?? "nil"
            #expect(found == expected, "cluster \(guest) (\(kind)) compressed to \(String(describing: length))")
        }
        try await Self.expectContents(path, Self.contents(writes, size: size), compression: layout.compression)
        try await Self.expectHeader(path, layout.compression)
        let digest = try #require(writer.digest)
        #expect(
            WriterDigestTests.recorded(digest) == (try await PiecewiseDigest.of(path, head: clusterSize)),
            "the digest is the file's")

        // The same writes uncompressed: compressed clusters save at least a quarter of a cluster each on average.
        let plainPath = directory.file("plain.qcow2")
        let plain = try QCOW2Writer(creating: plainPath, size: size, clusterBits: layout.clusterBits)
        defer { plain.close() }
        try Self.write(writes, to: plain, settle: (settleAfter, half))
        let (compressedBytes, plainBytes) = (try FileFacts.size(path), try FileFacts.size(plainPath))
        #expect(
            compressedBytes <= plainBytes - Int64(compressed / 4 * clusterSize),
            "\(compressedBytes) bytes compressed, \(plainBytes) bytes not")
    }

    @Test(
        "thousands of small compressed clusters packed into one run of shared host clusters across refcount blocks",
        arguments: compressions)
    func packedAcrossRefcountBlocks(_ compression: ClusterCompression) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        // 1 KiB clusters: a refcount block covers 512 clusters. 300 random bytes and zeros compress to about a third
        // of a cluster, an all-zero cluster to a few bytes: up to dozens of compressed clusters share a host cluster.
        let clusterSize = 1024
        let clusters = 3000
        var generator = SeededRandom(seed: 5)
        var data: [UInt8] = []
        for index in 0..<clusters {
            data +=
                index % 4 == 3
                ? [UInt8](repeating: 0, count: clusterSize)
                : generator.bytes(300) + [UInt8](repeating: 0, count: clusterSize - 300)
        }
        let writes = stride(from: 0, to: clusters, by: 100).map {
            Write(offset: UInt64($0 * clusterSize), bytes: Array(data[$0 * clusterSize..<($0 + 100) * clusterSize]))
        }
        let path = directory.file("packed.qcow2")
        let writer = try QCOW2Writer(
            creating: path, size: UInt64(data.count), clusterBits: 10, compression: compression)
        defer { writer.close() }
        let lengths = try Self.write(writes, to: writer)
        #expect(lengths.values.allSatisfy { $0 != nil }, "every cluster compresses")
        #expect(lengths.values.filter { $0 == 0 }.count == clusters / 4, "an all-zero cluster is not stored")

        let report = try await Self.checkClean(path)
        #expect(report.compressedClusters == clusters - clusters / 4)
        let fileSize = try FileFacts.size(path)
        let (least, most) = (Int64(600 * clusterSize), Int64(clusters / 2 * clusterSize))
        #expect(fileSize > least && fileSize < most, "\(fileSize) bytes")
        try await Self.expectContents(path, data, compression: compression)
    }

    @Test(
        "an overlay of compressed clusters and zero clusters over a backing file: check clean, the chain reads right",
        arguments: compressions)
    func overlay(_ compression: ClusterCompression) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let clusterSize = 65536
        let size = UInt64(24 * clusterSize)
        try await Qemu.create(directory.file("base.qcow2"), size: size)
        try await Qemu.io(directory.file("base.qcow2"), ["write -P 0xab 0 \(size)"])
        var generator = SeededRandom(seed: 9)
        var writes: [Write] = []
        // Clusters 0-4 and 10-13 of every kind, 18 text; 5-7 zeroed; the rest is the backing file's.
        let runs: [(first: Int, kinds: [Kind])] = [
            (0, Kind.allCases), (10, [.random, .text, .zero, .pattern]), (18, [.text]),
        ]
        for (first, kinds) in runs {
            let bytes = kinds.enumerated().flatMap { index, kind in
                Self.cluster(kind, index: first + index, size: clusterSize, &generator)
            }
            writes.append(Write(offset: UInt64(first * clusterSize), bytes: bytes))
        }
        let path = directory.file("overlay.qcow2")
        let writer = try QCOW2Writer(creating: path, size: size, backingFile: "base.qcow2", compression: compression)
        defer { writer.close() }
        try writer.zeroClusters(at: UInt64(5 * clusterSize), length: UInt64(3 * clusterSize))
        let lengths = try Self.write(Array(writes.reversed()), to: writer)

        let report = try await Self.checkClean(path)
        // The two all-zero clusters written are zero clusters, hiding the backing file's bytes there, not data.
        #expect((report.compressedClusters ?? 0) == lengths.values.filter { ($0 ?? 0) > 0 }.count)
        #expect((report.compressedClusters ?? 0) >= 5 && lengths.values.filter { $0 == 0 }.count == 2)
        var expected = Self.contents(writes, size: size, base: [UInt8](repeating: 0xab, count: Int(size)))
        expected.replaceSubrange(5 * clusterSize..<8 * clusterSize, with: [UInt8](repeating: 0, count: 3 * clusterSize))
        try await Self.expectContents(path, expected, compression: compression)
        try await Self.expectHeader(path, compression)
        let chain = try await Qemu.chain(path)
        #expect(chain.count == 2 && chain[0].backingFilename == "base.qcow2", "\(chain.map(\.filename))")
    }

    @Test(
        "written into an output, a compressed image is the file's byte for byte, each byte written once, same digest",
        arguments: compressions)
    func intoOutput(_ compression: ClusterCompression) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (writes, size) = Self.mixedWrites(clusterBits: 16, clusters: 20, seed: 3)
        let path = directory.file("file.qcow2")
        let file = try QCOW2Writer(creating: path, size: size, digesting: true, compression: compression)
        defer { file.close() }
        try Self.write(writes, to: file)

        let output = WriterOutputTests.CollectedOutput()
        let object = try QCOW2Writer(into: output, size: size, digesting: true, compression: compression)
        try Self.write(writes, to: object)
        object.close()

        let collected = output.state.withLock { $0 }
        let fileBytes = try ImageBytes.read(path)
        #expect(collected.finishedSize == UInt64(fileBytes.count) && !collected.discarded)
        #expect(collected.bytes == fileBytes)
        #expect(object.digest?.head == file.digest?.head && object.digest?.tail == file.digest?.tail)
        _ = try await Self.checkClean(path)
    }
}
