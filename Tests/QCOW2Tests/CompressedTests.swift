import Foundation
import QCOW2
import TestSupport
import Testing

extension QCOW2ReaderTests {
    /// Images written by `qemu-img convert -c`, alone and under an overlay.
    @Suite(.timeLimit(.minutes(3)))
    struct Compressed {
        @Test("compressed clusters inflate to what qemu reads", arguments: [4096, 65536, 2 << 20])
        func compressed(clusterSize: Int) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let source = directory.file("source.raw")
            let contents = Self.mixedContents(size: 5 * 1_048_576 + 4321)
            try ImageBytes.write(contents, to: source)
            let path = directory.file("compressed.qcow2")
            try await runTool([
                "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=\(clusterSize)", source,
                path,
            ])

            let image = try QCOW2Image(path: path)
            var compressedClusters = 0
            var offset: UInt64 = 0
            while offset < image.virtualSize {
                if case .compressed = try image.mapping(ofClusterAt: offset) { compressedClusters += 1 }
                offset += UInt64(clusterSize)
            }
            #expect(compressedClusters > 0)

            let chain = try QCOW2Chain.open(path: path)
            #expect(try chain.read(count: contents.count, at: 0) == contents)
            try await Check.contentsMatchQemu(path)
            try await Check.mapMatchesQemu(path)

            // Partial writes over compressed clusters: the overlay's data and the compressed base mix.
            let overlay = directory.file("overlay.qcow2")
            try await Qemu.createOverlay(overlay, backing: "compressed.qcow2", backingFormat: "qcow2")
            try await Qemu.io(
                overlay, ["write -P 0x99 5000 3000", "write -z 1048577 70000", "write -P 0x98 4194000 300000"])
            try await Check.contentsMatchQemu(overlay)
            try await Check.mapMatchesQemu(overlay)
        }

        /// Compressible patterns, incompressible noise (stored uncompressed by qemu) and zero runs (left
        /// unallocated), in stretches that do not line up with clusters.
        static func mixedContents(size: Int) -> [UInt8] {
            var generator = SeededRandom(seed: 42)
            var bytes = [UInt8](repeating: 0, count: size)
            var offset = 0
            var stretch = 0
            while offset < size {
                let length = min(size - offset, 10_000 + Int(generator.next() % 300_000))
                switch stretch % 4 {
                case 0: for index in 0..<length { bytes[offset + index] = UInt8(truncatingIfNeeded: index / 7) }
                case 1: bytes.replaceSubrange(offset..<offset + length, with: generator.bytes(length))
                case 2: break
                default: for index in 0..<length { bytes[offset + index] = index % 512 < 3 ? 0xEE : 0 }
                }
                offset += length
                stretch += 1
            }
            return bytes
        }
    }
}
