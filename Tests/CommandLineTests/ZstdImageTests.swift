import Foundation
import TestSupport
import Testing

extension CopyIntegration {
    /// An image qemu-img compressed with zstd, read through the commands: `image-info` and `serve`.
    @Suite("zstd-compressed images", .serialized)
    struct ZstdImageTests {
        @Test(
            "image-info names zstd; pullback copy of pullback serve is byte for byte qemu-img's raw conversion",
            .timeLimit(.minutes(1)))
        func servesAZstdImage() async throws {
            try await Fixture.run { fx in
                // Random data (stored uncompressed), zeros (left out) and compressible data (zstd clusters).
                var generator = SeededRandom(seed: 23)
                let pattern = (0..<3 * mib).map { UInt8(truncatingIfNeeded: $0 / 9) }
                let source = fx.path("source.raw")
                try FileFacts.create(
                    source, with: Data(generator.bytes(3 * mib) + [UInt8](repeating: 0, count: 2 * mib) + pattern))
                let image = fx.path("zstd.qcow2")
                try await fx.runChecked([
                    "qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd", source,
                    image,
                ])
                let reference = fx.path("reference.raw")
                try await fx.runChecked(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, reference])

                let json = try await fx.run([try Pullback.binaryPath(), "image-info", image, "--json"])
                try requireSuccess(json)
                let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                let layers = report?["layers"] as? [[String: Any]]
                #expect(layers?.first?["compression_type"] as? String == "zstd", "\(json.stdout)")
                let text = try await fx.run([try Pullback.binaryPath(), "image-info", image])
                try requireSuccess(text)
                #expect(text.stdout.contains("(qcow2, cluster 64.0 KiB, compression zstd)"), "\(text.stdout)")

                let socket = fx.path("serve.sock")
                let server = try await ServeTests.serve(fx, images: [image], socket: socket)
                let copied = fx.target("copied.raw")
                try requireSuccess(try await Pullback.copy(fx, ["nbd+unix:///zstd.qcow2?socket=\(socket)", copied]))
                server.interrupt()
                try await fx.runChecked(["cmp", copied, reference])
            }
        }
    }
}
