import Foundation
import TestSupport
import Testing

extension CopyIntegration {
    /// `pullback copy --format qcow2 --compress`: images qemu-img finds clean and identical with the source, smaller
    /// than an uncompressed copy of compressible data; `--compress` refused where it cannot apply or is malformed.
    @Suite("qcow2 target: --compress", .serialized)
    struct CompressedCopyTests {
        /// 8 MiB in 256 KiB stretches that do not line up with clusters: random, text, zero and a byte pattern.
        static func mixedSource(_ fx: Fixture) throws -> String {
            var generator = SeededRandom(seed: 23)
            let line = Array("pullback copies this line into a compressed qcow2 image\n".utf8)
            var bytes: [UInt8] = []
            var stretch = 0
            while bytes.count < 8 * mib {
                let length = min(8 * mib - bytes.count, 256 * kib + 3000)
                switch stretch % 4 {
                case 0: bytes += generator.bytes(length)
                case 1: bytes += (0..<length).map { line[$0 % line.count] }
                case 2: bytes += [UInt8](repeating: 0, count: length)
                default: bytes += (0..<length).map { UInt8(truncatingIfNeeded: $0 / 13 &+ stretch) }
                }
                stretch += 1
            }
            let path = fx.path("source.raw")
            try ImageBytes.write(bytes, to: path)
            return path
        }

        /// `qemu-img check --output=json`: how many clusters are compressed.
        static func compressedClusters(_ fx: Fixture, _ image: String) async throws -> Int {
            let check = try await fx.runChecked(["qemu-img", "check", "-f", "qcow2", "--output=json", image])
            let report = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any]
            return report?["compressed-clusters"] as? Int ?? 0
        }

        @Test(
            "zstd and deflate:1 over two connections: check clean, identical with the source, smaller than uncompressed",
            .timeLimit(.minutes(2)))
        func compressedCopies() async throws {
            try await Fixture.run { fx in
                let source = try Self.mixedSource(fx)
                let server = try await NBDServer.qemuNBD(fx, image: source, format: "raw")
                let plain = fx.target("plain.qcow2")
                try requireSuccess(
                    try await Pullback.copy(fx, [server.uri(), plain, "--format", "qcow2", "--connections", "2"]))
                try await Qemu.expectIdentical(fx, plain, source)
                #expect(try await Self.compressedClusters(fx, plain) == 0)
                let plainSize = try FileFacts.size(plain)

                for (compression, name, headerType) in [("zstd", "zstd", "zstd"), ("deflate:1", "deflate1", "zlib")] {
                    let target = fx.target("\(name).qcow2")
                    let result = try await Pullback.copy(
                        fx,
                        [server.uri(), target, "--format", "qcow2", "--compress", compression, "--connections", "2"])
                    try requireSuccess(result)
                    try await Qemu.expectCheckClean(fx, target)
                    try await Qemu.expectIdentical(fx, target, source)
                    let info = try await fx.runChecked(["qemu-img", "info", "-f", "qcow2", target])
                    #expect(info.stdout.contains("compression type: \(headerType)"), "\(info)")
                    // A quarter of the data is random, and stored as it is; the rest compresses to almost nothing.
                    let compressed = try await Self.compressedClusters(fx, target)
                    #expect(compressed >= 8 * mib / 65536 / 4, "\(compression): \(compressed) compressed clusters")
                    let size = try FileFacts.size(target)
                    #expect(size * 2 < plainSize, "\(compression): \(size) bytes, \(plainSize) uncompressed")
                }
                // Pullback's own reader maps the deflate image as qemu does.
                try await expectImageInfoMatchesQemu(fx, fx.target("deflate1.qcow2"))
                #expect(
                    try FileFacts.listing(fx.outDir).sorted() == ["deflate1.qcow2", "plain.qcow2", "zstd.qcow2"],
                    "leftovers beside the targets")
            }
        }

        /// `pullback image-info --json` reads the image and counts as many data bytes as `qemu-img map`.
        func expectImageInfoMatchesQemu(_ fx: Fixture, _ image: String) async throws {
            let result = try await fx.run([try Pullback.binaryPath(), "image-info", image, "--json"])
            try requireSuccess(result)
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let report = try decoder.decode(ImageInfoTests.Report.self, from: Data(result.stdout.utf8))
            let data = report.layers.first?.dataBytes
            let qemu = try await Qemu.map(image, using: fx).filter(\.data).reduce(0) { $0 + $1.length }
            #expect(data == qemu, "image-info: \(result.stdout)")
        }

        @Test("--compress with a raw target is refused in one line, and nothing is created", .timeLimit(.minutes(1)))
        func rawTargetRefused() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "(0x11)*65536", "size=1M"])
                for format: [String] in [[], ["--format", "raw"]] {
                    let target = fx.target()
                    let result = try await Pullback.copy(fx, [server.uri(), target, "--compress", "zstd"] + format)
                    expectCleanFailure(result, mentioning: ["--compress", "qcow2"])
                    expectNoCopyLeft(at: target)
                }
                #expect(try FileFacts.listing(fx.outDir).isEmpty)
            }
        }

        @Test(
            "levels at the ends of their ranges are taken, one past them and unknown methods are usage errors",
            .timeLimit(.minutes(1)))
        func levelRanges() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "(0x5a)*65536 (0x11)*1000", "size=1M"])
                for value in ["zstd:1", "zstd:19", "deflate:1", "deflate:9", "none"] {
                    // No colon in the name: qemu would take the part before it for a protocol.
                    let target = fx.target(value.replacingOccurrences(of: ":", with: "-") + ".qcow2")
                    try requireSuccess(
                        try await Pullback.copy(fx, [server.uri(), target, "--format", "qcow2", "--compress", value]))
                    try await Qemu.expectCheckClean(fx, target)
                    let exported = fx.path("export.raw")
                    if !FileFacts.exists(exported) { try await fx.runChecked(["nbdcopy", server.uri(), exported]) }
                    try await Qemu.expectIdentical(fx, target, exported)
                }
                for value in ["zstd:0", "zstd:20", "deflate:10", "deflate:0", "lz4", "zstd:", "zstd:x", "none:1"] {
                    let target = fx.target("bad.qcow2")
                    let result = try await Pullback.copy(
                        fx, [server.uri(), target, "--format", "qcow2", "--compress", value])
                    expectCleanFailure(result, exitCode: 64, mentioning: ["--compress", "'\(value)'"])
                    expectNoCopyLeft(at: target)
                }
            }
        }
    }
}
