import Foundation
import QCOW2
import Synchronization
import TestSupport
import Testing

extension QCOW2ReaderTests {
    /// Images qemu-img compressed with zstd (compression type 1): read as qemu reads them, and the header's compression
    /// type and feature bit checked against each other.
    @Suite(.timeLimit(.minutes(3)))
    struct Zstd {
        @Test("zstd clusters qemu-img wrote read as qemu reads them", arguments: [4096, 65536, 2 << 20])
        func readsQemuImages(clusterSize: Int) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let source = directory.file("source.raw")
            let contents = Compressed.mixedContents(size: 5 * 1_048_576 + 4321)
            try ImageBytes.write(contents, to: source)
            let path = directory.file("zstd.qcow2")
            try await runTool([
                "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o",
                "compression_type=zstd,cluster_size=\(clusterSize)", source, path,
            ])

            let image = try QCOW2Image(path: path)
            #expect(image.header.compressionType == QCOW2Header.CompressionType.zstd)
            #expect(image.header.incompatibleFeatures & QCOW2Header.Incompatible.compressionType != 0)
            var compressedClusters = 0
            for offset in stride(from: 0, to: image.virtualSize, by: clusterSize) {
                if case .compressed = try image.mapping(ofClusterAt: offset) { compressedClusters += 1 }
            }
            #expect(compressedClusters > 0)

            let chain = try QCOW2Chain.open(path: path)
            #expect(try chain.read(count: contents.count, at: 0) == contents)
            try await Check.contentsMatchQemu(path)
            try await Check.mapMatchesQemu(path)

            // Readers on several threads at once share the decoder contexts; each gets its own clusters' bytes.
            let mismatches = Atomic(0)
            DispatchQueue.concurrentPerform(iterations: 8) { worker in
                var generator = SeededRandom(seed: UInt64(worker) + 200)
                for _ in 0..<10 {
                    let offset = Int(generator.next() % UInt64(contents.count))
                    let count = Int(generator.next() % UInt64(min(200_000, contents.count - offset)))
                    let bytes = try? chain.read(count: count, at: UInt64(offset))
                    if bytes.map({ $0[...] != contents[offset..<offset + count] }) ?? true {
                        mismatches.add(1, ordering: .relaxed)
                    }
                }
            }
            #expect(mismatches.load(ordering: .relaxed) == 0)

            // A zlib overlay (qemu-img's default) over the zstd base: each layer decodes its own clusters.
            let overlay = directory.file("overlay.qcow2")
            try await Qemu.createOverlay(overlay, backing: "zstd.qcow2", backingFormat: "qcow2")
            try await Qemu.io(overlay, ["write -P 0x99 5000 3000", "write -z 1048577 70000"])
            try await Check.contentsMatchQemu(overlay)
            let report = try ImageReport(path: overlay)
            #expect(report.layers.map(\.compressionType) == ["zlib", "zstd"])
        }

        @Test("the compression type and its feature bit must agree; other types are refused naming the value")
        func compressionTypeInHeader() async throws {
            let sample = try await CompressedSample(compressionType: "zstd")
            defer { sample.directory.remove() }
            let bit = QCOW2Header.Incompatible.compressionType
            let features = ImageBytes.u64(sample.bytes, at: 72)
            let cases: [(String, QCOW2Error.Code, String, (inout [UInt8]) -> Void)] = [
                ("zstd-without-bit", .corrupt, "bit 3", { ImageBytes.put(features & ~bit, into: &$0, at: 72) }),
                ("zlib-with-bit", .corrupt, "bit 3", { $0[104] = 0 }),
                ("type-2", .unsupported, "compression type 2", { $0[104] = 2 }),
                ("type-255", .unsupported, "compression type 255", { $0[104] = 255 }),
            ]
            for (name, code, words, edit) in cases {
                let path = try sample.variant(name, edit)
                let error = expectError(code) { _ = try QCOW2Chain.open(path: path) }
                let message = error?.message ?? ""
                #expect(message.contains(path) && message.contains(words) && !message.contains("\n"), "\(message)")
            }
            // As qemu-img made it, it opens and reads.
            #expect(try QCOW2Chain.open(path: sample.path).read(count: sample.contents.count, at: 0) == sample.contents)
        }

        @Test("hostile zstd clusters are refused in one line naming the cluster; well-formed hand-made frames read")
        func hostileZstdClusters() async throws {
            let sample = try await CompressedSample(compressionType: "zstd")
            defer { sample.directory.remove() }
            let cluster = sample.clusterSize
            // Frames the decoder must accept, as qemu's does: one frame, two frames, a frame and sector padding.
            let accepted: [(String, [UInt8], [UInt8])] = [
                ("one-frame", ZstdFrame.rle(0x77, count: cluster), [UInt8](repeating: 0x77, count: cluster)),
                (
                    "two-frames", ZstdFrame.rle(0x11, count: cluster / 2) + ZstdFrame.rle(0x22, count: cluster / 2),
                    [UInt8](repeating: 0x11, count: cluster / 2) + [UInt8](repeating: 0x22, count: cluster / 2)
                ),
                (
                    "frame-and-padding", ZstdFrame.rle(0x33, count: cluster) + [UInt8](repeating: 0, count: 300),
                    [UInt8](repeating: 0x33, count: cluster)
                ),
            ]
            for (name, data, expected) in accepted {
                let (path, _) = try sample.variant(name, compressed: data)
                #expect(try QCOW2Chain.open(path: path).read(count: cluster, at: 0) == expected, "\(name)")
            }
            // 32,000 blocks of 64 KiB each (2 GiB) in 126 KiB; the second frame also claims 1 TiB of content.
            let blocks = (cluster * 2 - 2048) / 4
            let refused: [(String, [UInt8], String)] = [
                ("bomb", ZstdFrame.rle(0x44, count: blocks * cluster), "to more than a cluster"),
                ("bomb-of-a-terabyte", ZstdFrame.rle(0x44, count: 1000 * cluster, contentSize: 1 << 40), "more than"),
                ("window-of-2-gib", ZstdFrame.rle(0x55, count: cluster, windowLog: 31), "not valid zstd data"),
                ("short", ZstdFrame.rle(0x66, count: 1000), "to 1000 bytes, less than a cluster"),
                ("short-and-padding", ZstdFrame.rle(0x66, count: 1000) + [0, 0, 0, 0, 0, 0], "to 1000 bytes"),
                ("cut-frame", Array(ZstdFrame.rle(0x66, count: cluster).dropLast(4)), "less than a cluster"),
                ("garbage", [UInt8](repeating: 0xff, count: 600), "not valid zstd data"),
                ("deflate-data", try await Deflate.stream(count: cluster, in: sample.directory), "not valid zstd"),
            ]
            for (name, data, words) in refused {
                let (path, hostOffset) = try sample.variant(name, compressed: data)
                try Self.expectRefused(path, hostOffset: hostOffset, words, cluster: cluster)
            }
            try sample.expectRunPastTheEndRefused()
        }

        @Test("hostile deflate clusters: a bomb, a stream that never ends, one cluster plus a byte, less, garbage")
        func hostileDeflateClusters() async throws {
            let sample = try await CompressedSample(compressionType: "zlib")
            defer { sample.directory.remove() }
            let cluster = sample.clusterSize
            let exact = try await Deflate.stream(count: cluster, in: sample.directory)
            let (exactPath, _) = try sample.variant("exact", compressed: exact)
            #expect(
                try QCOW2Chain.open(path: exactPath).read(count: cluster, at: 0)
                    == [UInt8](repeating: 0x5a, count: cluster))
            // Empty stored blocks, none of them the last: a stream that goes on as long as its input does.
            let endless = [UInt8](repeating: 0, count: cluster * 2 - 2048).enumerated().map { index, _ in
                index % 5 >= 3 ? UInt8(0xff) : 0
            }
            let refused: [(String, [UInt8], String)] = [
                ("bomb", try await Deflate.stream(count: 10 << 20, in: sample.directory), "to more than a cluster"),
                ("one-byte-more", try await Deflate.stream(count: cluster + 1, in: sample.directory), "more than"),
                ("endless", endless, "to 0 bytes, less than a cluster"),
                ("short", try await Deflate.stream(count: 1000, in: sample.directory), "to 1000 bytes, less than"),
                ("garbage", [UInt8](repeating: 0xff, count: 600), "not valid deflate data"),
            ]
            for (name, data, words) in refused {
                let (path, hostOffset) = try sample.variant(name, compressed: data)
                try Self.expectRefused(path, hostOffset: hostOffset, words, cluster: cluster)
            }
            try sample.expectRunPastTheEndRefused()
        }

        /// Reading guest cluster 0 of `path`, whose data is at `hostOffset`, fails in one line naming both and saying
        /// `words`; mapping does not decompress, and the next cluster still reads.
        static func expectRefused(
            _ path: String, hostOffset: UInt64, _ words: String, cluster: Int,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let chain = try QCOW2Chain.open(path: path)
            let error = expectError(.corrupt, sourceLocation: sourceLocation) { _ = try chain.read(count: 100, at: 0) }
            let message = error?.message ?? ""
            #expect(
                message.contains(path) && message.contains("compressed cluster at \(hostOffset) ")
                    && message.contains(words) && !message.contains("\n"), "\(message)", sourceLocation: sourceLocation)
            #expect(try chain.map(0..<UInt64(cluster)).first?.kind == .data, sourceLocation: sourceLocation)
            _ = try chain.read(count: cluster, at: UInt64(cluster))
        }
    }
}

/// A real compressed image made by qemu-img (64 KiB clusters, 1 MiB), and variants of it whose guest cluster 0 is
/// hostile data appended to the file.
struct CompressedSample {
    let directory: TemporaryDirectory
    let path: String
    let contents: [UInt8]
    let bytes: [UInt8]
    let clusterSize = 65536
    var l2Offset: Int { ImageBytes.firstL2Offset(bytes).l2 }

    init(compressionType: String) async throws {
        directory = try TemporaryDirectory()
        let source = directory.file("source.raw")
        contents = QCOW2ReaderTests.Compressed.mixedContents(size: 1 << 20)
        try ImageBytes.write(contents, to: source)
        path = directory.file("sample.qcow2")
        try await runTool([
            "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=\(compressionType)",
            source, path,
        ])
        bytes = try ImageBytes.read(path)
    }

    /// A copy of the image changed by `edit`.
    func variant(_ name: String, _ edit: (inout [UInt8]) -> Void) throws -> String {
        var copy = bytes
        edit(&copy)
        let variant = directory.file(name + ".qcow2")
        try ImageBytes.write(copy, to: variant)
        return variant
    }

    /// A copy whose guest cluster 0 is `data`, appended to the file after 100 other bytes (so not
    /// sector-aligned), described by a
    /// compressed L2 entry of `extraSectors` more sectors than the data needs. Returns its path and the data's offset.
    func variant(_ name: String, compressed data: [UInt8], extraSectors: Int = 0) throws
        -> (path: String, hostOffset: UInt64)
    {
        let hostOffset = bytes.count + 100
        let sectors = (hostOffset % 512 + data.count + 511) / 512 + extraSectors
        let path = try variant(name) { copy in
            copy += [UInt8](repeating: 0xEE, count: 100) + data
            let shift = 62 - (16 - 8)
            let entry = UInt64(1) << 62 | UInt64(sectors - 1) << UInt64(shift) | UInt64(hostOffset)
            ImageBytes.put(entry, into: &copy, at: l2Offset)
        }
        return (path, UInt64(hostOffset))
    }

    /// A descriptor whose sectors end past the file's last one is refused as soon as it is mapped, even when the data
    /// it starts with decompresses (as qemu-img's own first compressed cluster, moved to the end of the file, does).
    func expectRunPastTheEndRefused(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let index = try #require(
            (0..<16).first { ImageBytes.u64(bytes, at: l2Offset + 8 * $0) & 1 << 62 != 0 },
            sourceLocation: sourceLocation)
        let entry = ImageBytes.u64(bytes, at: l2Offset + 8 * index)
        let offset = Int(entry & (1 << 54 - 1))
        let length = Int((entry >> 54) & 0xff + 1) * 512 - offset % 512
        let data = Array(bytes[offset..<min(offset + length, bytes.count)])
        let expected = Array(contents[index * clusterSize..<(index + 1) * clusterSize])
        let (fits, _) = try variant("moved", compressed: data)
        #expect(
            try QCOW2Chain.open(path: fits).read(count: clusterSize, at: 0) == expected, sourceLocation: sourceLocation)

        let (path, hostOffset) = try variant("past-the-end", compressed: data, extraSectors: 1)
        let chain = try QCOW2Chain.open(path: path)
        for attempt in [{ _ = try chain.read(count: 1, at: 0) }, { _ = try chain.map(0..<chain.size) }] {
            let error = expectError(.corrupt, sourceLocation: sourceLocation, attempt)
            let message = error?.message ?? ""
            #expect(
                message.contains(path) && message.contains("compressed cluster at \(hostOffset) ")
                    && message.contains("runs past the end of the file"), "\(message)", sourceLocation: sourceLocation)
        }
    }
}

/// zstd frames made by hand, of RLE blocks (one byte repeated), so that a test can say exactly what a frame holds and
/// how much it claims (RFC 8878).
enum ZstdFrame {
    /// One frame of `count` bytes of `byte` in blocks of at most 64 KiB, with a window of 2^`windowLog` bytes and, if
    /// given, a content size field saying `contentSize`.
    static func rle(_ byte: UInt8, count: Int, windowLog: Int = 16, contentSize: UInt64? = nil) -> [UInt8] {
        var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        // Frame header descriptor: an 8-byte content size or none; never a single segment, so a window descriptor
        // follows (exponent in the high five bits: windowLog - 10).
        frame.append(contentSize == nil ? 0x00 : 0xC0)
        frame.append(UInt8(windowLog - 10) << 3)
        if let contentSize { frame += (0..<8).map { UInt8(truncatingIfNeeded: contentSize >> UInt64(8 * $0)) } }
        var left = count
        repeat {
            let size = min(left, 65536)
            left -= size
            let header = UInt32(size) << 3 | 1 << 1 | (left == 0 ? 1 : 0)
            frame += [UInt8(header & 0xff), UInt8(header >> 8 & 0xff), UInt8(header >> 16), byte]
        } while left > 0
        return frame
    }
}

/// Raw deflate streams as qemu writes them (4 KiB window), made by Python's zlib.
enum Deflate {
    /// `count` bytes of 0x5a, deflated.
    static func stream(count: Int, in directory: TemporaryDirectory) async throws -> [UInt8] {
        let output = directory.file("deflate-\(count).bin")
        let script = """
            import sys, zlib
            c = zlib.compressobj(9, zlib.DEFLATED, -12)
            open(sys.argv[1], 'wb').write(c.compress(b'\\x5a' * int(sys.argv[2])) + c.flush())
            """
        _ = try await runTool(["python3", "-c", script, output, String(count)])
        return try ImageBytes.read(output)
    }
}
