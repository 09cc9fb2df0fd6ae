import Foundation
import QCOW2
import TestSupport
import Testing

extension QCOW2ReaderTests {
    /// Backing chains: relative and absolute names, a raw base, backing files shorter than their overlays.
    @Suite(.timeLimit(.minutes(3)))
    struct Chains {
        /// base/base.raw (3 MiB + 100) <- mid/mid.qcow2 (5 MiB, relative name) <- top.qcow2 (8 MiB + 1536,
        /// absolute name), with writes, zero writes and discards in every layer.
        static func makeThreeDeepChain(in directory: TemporaryDirectory) async throws -> (
            top: String, mid: String, base: String
        ) {
            try FileManager.default.createDirectory(atPath: directory.file("base"), withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory.file("mid"), withIntermediateDirectories: true)
            let base = directory.file("base/base.raw")
            let mid = directory.file("mid/mid.qcow2")
            let top = directory.file("top.qcow2")
            // Written here rather than by qemu-img, which rounds sizes up to 512 bytes.
            var baseBytes = [UInt8](repeating: 0, count: 3 * 1_048_576 + 100)
            for index in 0..<2_000_000 { baseBytes[index] = UInt8(truncatingIfNeeded: index / 4096 + 1) }
            for index in 3_145_000..<baseBytes.count { baseBytes[index] = 0x12 }
            try ImageBytes.write(baseBytes, to: base)
            try await Qemu.createOverlay(mid, backing: "../base/base.raw", backingFormat: "raw", size: 5 * 1_048_576)
            try await Qemu.io(
                mid,
                [
                    "write -P 0x33 1048576 524288", "write -z 0 65536", "discard 196608 131072",
                    "write -P 0x44 3145778 10000", "write -z 4194304 4096",
                ])
            try await Qemu.createOverlay(top, backing: mid, backingFormat: "qcow2", size: 8 * 1_048_576 + 1536)
            try await Qemu.io(
                top,
                [
                    "write -P 0x66 2097252 300000", "write -z 1052672 8192", "write -P 0x77 7340032 65536",
                    "write -z -u 65536 65536", "write -P 0x78 \(8 * 1_048_576 + 1000) 536",
                ])
            return (top, mid, base)
        }

        @Test("a three-deep chain over a raw base reads and maps as qemu does")
        func threeDeep() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (top, mid, base) = try await Self.makeThreeDeepChain(in: directory)
            let chain = try QCOW2Chain.open(path: top)
            #expect(chain.layers.map(\.path) == [top, mid, directory.file("mid/../base/base.raw")])
            #expect(try ImageBytes.read(chain.layers[2].path) == ImageBytes.read(base))
            #expect(chain.layers.map(\.format) == [.qcow2, .qcow2, .raw])
            let sizes: [UInt64] = [8 * 1_048_576 + 1536, 5 * 1_048_576, 3 * 1_048_576 + 100]
            #expect(chain.layers.map(\.virtualSize) == sizes)
            #expect(chain.layers[2].header == nil)
            #expect(chain.layers[1].header?.backingFile == "../base/base.raw")
            #expect(chain.layers[0].header?.backingFormat == "qcow2")
            #expect(chain.size == 8 * 1_048_576 + 1536)
            try await Check.contentsMatchQemu(top)
            try await Check.mapMatchesQemu(top)
            try await Check.contentsMatchQemu(mid)
            try await Check.mapMatchesQemu(mid)

            // A zero write in an overlay hides the data below it.
            #expect(try chain.read(count: 65536, at: 0).allSatisfy { $0 == 0x00 })
            #expect(try chain.map(0..<65536) == [ChainExtent(offset: 0, length: 65536, kind: .zero, layer: 1)])
            // Past the end of the raw base, inside mid: unallocated everywhere.
            let beyondBase = try chain.map(4 * 1_048_576 + 65536..<4 * 1_048_576 + 131072)
            #expect(
                beyondBase == [
                    ChainExtent(offset: 4 * 1_048_576 + 65536, length: 65536, kind: .unallocated, layer: nil)
                ])
        }

        @Test("a relative backing name resolves against the directory of the image naming it")
        func relativeNames() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (_, mid, base) = try await Self.makeThreeDeepChain(in: directory)
            let chain = try QCOW2Chain.open(path: mid)
            // "../base/base.raw" from mid/, not from the current directory.
            #expect(chain.layers[1].path == directory.file("mid/../base/base.raw"))
            #expect(chain.layers[1].virtualSize == UInt64(try ImageBytes.read(base).count))
        }

        @Test("without a backing format extension, the backing file's format is probed")
        func probedFormats() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let (top, mid, _) = try await Self.makeThreeDeepChain(in: directory)
            let expected = try await Qemu.rawContents(of: top)
            for path in [top, mid] { try Self.removeBackingFormat(path) }
            let chain = try QCOW2Chain.open(path: top)
            #expect(chain.layers.map(\.format) == [.qcow2, .qcow2, .raw])
            #expect(chain.layers[0].header?.backingFormat == nil)
            #expect(try chain.read(count: Int(chain.size), at: 0) == expected)
        }

        @Test("an unknown backing format is unsupported")
        func unknownBackingFormat() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let base = directory.file("base.qcow2")
            let top = directory.file("top.qcow2")
            try await Qemu.create(base, size: 1 << 20)
            try await Qemu.createOverlay(top, backing: "base.qcow2", backingFormat: "qcow2")
            try ImageBytes.patch(top) { bytes in
                // Same length as "qcow2", so the extension keeps its layout.
                if let at = Self.find(Array("qcow2".utf8), in: bytes, before: 512) {
                    bytes.replaceSubrange(at..<at + 5, with: Array("vhdx2".utf8))
                }
            }
            expectError(.unsupported) { _ = try QCOW2Chain.open(path: top) }
        }

        @Test("the top image may be raw")
        func rawTop() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("disk.img")
            let contents = Compressed.mixedContents(size: 1_000_001)
            try ImageBytes.write(contents, to: path)
            let chain = try QCOW2Chain.open(path: path, format: .raw)
            #expect(chain.layers.map(\.format) == [.raw])
            #expect(chain.size == 1_000_001)
            #expect(try chain.map(0..<chain.size) == [ChainExtent(offset: 0, length: 1_000_001, kind: .data, layer: 0)])
            #expect(try chain.read(count: 1_000_001, at: 0) == contents)
            #expect(try chain.read(count: 3, at: 999_998)[...] == contents[999_998...])
            // Not probed: a raw file opened as qcow2 is refused.
            expectError(.notQCOW2) { _ = try QCOW2Chain.open(path: path) }
            // Told it is raw, a qcow2 file is read as raw.
            let qcow2 = directory.file("image.qcow2")
            try await Qemu.create(qcow2, size: 1 << 20)
            let asRaw = try QCOW2Chain.open(path: qcow2, format: .raw)
            #expect(asRaw.layers[0].format == .raw)
            #expect(asRaw.size == UInt64(try ImageBytes.read(qcow2).count))
        }

        @Test("statistics count data and zero clusters per layer, clamped to the virtual size")
        func statistics() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let base = directory.file("base.raw")
            let top = directory.file("top.qcow2")
            try ImageBytes.write([UInt8](repeating: 7, count: 700_000), to: base)
            try await Qemu.createOverlay(top, backing: "base.raw", backingFormat: "raw", size: 1_048_576 + 1024)
            try await Qemu.io(
                top, ["write -P 1 0 131072", "write -z -u 262144 65536", "write -P 2 \(1_048_576 + 990) 10"])
            let chain = try QCOW2Chain.open(path: top)
            let statistics = try chain.layerStatistics()
            #expect(statistics.count == 2)
            // Two full clusters and the partial last one (1024 bytes).
            #expect(statistics[0].dataBytes == 2 * 65536 + 1024)
            #expect(statistics[0].zeroBytes == 65536)
            #expect(statistics[1].dataBytes == 700_000)
            #expect(statistics[1].zeroBytes == 0)
            // The same sums from qemu's map of the top layer's own clusters.
            let own = try await Qemu.map(top).filter { $0.present && $0.depth == 0 }
            #expect(statistics[0].dataBytes == own.filter(\.data).reduce(0) { $0 + $1.length })
            #expect(statistics[0].zeroBytes == own.filter { !$0.data }.reduce(0) { $0 + $1.length })
            for (layer, stats) in zip(chain.layers, statistics) {
                #expect(stats.allocatedBytes == UInt64(try FileFacts.allocated(layer.path)))
            }
        }

        /// Renames the backing format header extension to an unknown type, which readers skip.
        static func removeBackingFormat(_ path: String) throws {
            try ImageBytes.patch(path) { bytes in
                var offset = Int(ImageBytes.u32(bytes, at: 100))
                while offset + 8 <= 4096 {
                    let type = ImageBytes.u32(bytes, at: offset)
                    let length = Int(ImageBytes.u32(bytes, at: offset + 4))
                    if type == 0 { return }
                    if type == QCOW2Header.ExtensionType.backingFormat {
                        ImageBytes.put(UInt32(0x1234_5678), into: &bytes, at: offset)
                    }
                    offset += 8 + (length + 7) / 8 * 8
                }
            }
        }

        static func find(_ needle: [UInt8], in bytes: [UInt8], before limit: Int) -> Int? {
            (0..<min(limit, bytes.count - needle.count)).first { bytes[$0..<$0 + needle.count].elementsEqual(needle) }
        }
    }
}
