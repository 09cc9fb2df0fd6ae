import Foundation
import TestSupport
import Testing

extension CopyIntegration {
    /// `pullback image-info` against images qemu-img made, with qemu-img's own map of each layer as the oracle.
    @Suite("pullback image-info", .serialized)
    struct ImageInfoTests {
        struct Report: Decodable {
            struct Layer: Decodable {
                let path: String
                let format: String
                let virtualSize: Int64
                let clusterSize: Int
                let backingFile: String?
                let allocatedBytes: Int64
                let dataBytes: Int64
                let zeroBytes: Int64
            }
            let image: String
            let virtualSize: Int64
            let layers: [Layer]
        }

        /// `image-info --json` prints snake_case keys.
        var snakeCaseDecoder: JSONDecoder {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return decoder
        }

        /// Data and zero bytes qemu-img sees in one layer opened alone (its backing file cut off).
        func qemuLayerBytes(_ fx: Fixture, _ path: String) async throws -> (data: Int64, zero: Int64) {
            let entries = try await Qemu.map(
                #"json:{"driver":"qcow2","file":{"driver":"file","filename":"\#(path)"},"backing":null}"#, using: fx)
            let data = entries.filter { $0.depth == 0 && $0.data }.reduce(0) { $0 + $1.length }
            let zero = entries.filter { $0.depth == 0 && $0.present && $0.zero && !$0.data }
                .reduce(0) { $0 + $1.length }
            return (data, zero)
        }

        @Test("The chain, virtual size and per-layer data and zero bytes agree with qemu-img", .timeLimit(.minutes(2)))
        func reportsAChain() async throws {
            try await Fixture.run { fx in
                let base = fx.path("base.qcow2")
                let top = fx.path("top.qcow2")
                _ = try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", base, "32M"])
                _ = try await fx.runChecked([
                    "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 3M", "-c", "write -P 0x22 20M 100k", base,
                ])
                _ = try await fx.runChecked([
                    "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top,
                ])
                _ = try await fx.runChecked([
                    "qemu-io", "-f", "qcow2", "-c", "write -z 0 1M", "-c", "write -P 0x33 8M 64k", "-c",
                    "write -P 0x44 31M 5", top,
                ])

                let result = try await fx.run([try Pullback.binaryPath(), "image-info", top, "--json"])
                try requireSuccess(result)
                let report = try snakeCaseDecoder.decode(Report.self, from: Data(result.stdout.utf8))
                #expect(report.virtualSize == 32 << 20)
                #expect(report.layers.map(\.format) == ["qcow2", "qcow2"])
                #expect(report.layers.first?.backingFile == "base.qcow2")
                #expect(report.layers.last?.backingFile == nil)
                for (layer, path) in zip(report.layers, [top, base]) {
                    let expected = try await qemuLayerBytes(fx, path)
                    #expect(layer.dataBytes == expected.data, "\(path): data bytes")
                    #expect(layer.zeroBytes == expected.zero, "\(path): zero bytes")
                    let blocks = try FileFacts.allocated(path)
                    #expect(layer.allocatedBytes == blocks, "\(path): allocated bytes")
                    #expect(layer.clusterSize == 65536)
                }

                let text = try await fx.run([try Pullback.binaryPath(), "image-info", top])
                try requireSuccess(text)
                #expect(text.stdout.contains("backing file base.qcow2"))
            }
        }

        @Test("Not a qcow2 image, or a missing backing file: one line, exit 1", .timeLimit(.minutes(1)))
        func refusesBadImages() async throws {
            try await Fixture.run { fx in
                let junk = fx.path("junk.img")
                try Data(repeating: 0x5a, count: 4096).write(to: URL(fileURLWithPath: junk))
                let notQCOW2 = try await fx.run([try Pullback.binaryPath(), "image-info", junk])
                expectCleanFailure(notQCOW2, mentioning: ["qcow2"])

                let orphan = fx.path("orphan.qcow2")
                _ = try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", fx.path("gone.qcow2"), "1M"])
                _ = try await fx.runChecked([
                    "qemu-img", "create", "-q", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", orphan,
                ])
                try FileManager.default.removeItem(atPath: fx.path("gone.qcow2"))
                let missing = try await fx.run([try Pullback.binaryPath(), "image-info", orphan])
                expectCleanFailure(missing, mentioning: ["gone.qcow2"])
            }
        }

        @Test(
            "4 Mi L1 entries sharing one L2 table of alternating data and zero clusters: one line, exit 1",
            .timeLimit(.minutes(2)))
        func refusesSharedL2Tables() async throws {
            try await Fixture.run { fx in
                // The review's image: a 33 MiB file describing 128 GiB, whose walk took an estimated 38 minutes.
                let image = fx.path("shared-l2.qcow2")
                _ = try await fx.runChecked([
                    "qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", image, "128G",
                ])
                _ = try await fx.runChecked(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 512", image])
                try ImageBytes.shareFirstL2Table(image)
                for arguments in [[image], [image, "--json"]] {
                    let result = try await fx.run([try Pullback.binaryPath(), "image-info"] + arguments)
                    expectCleanFailure(result, mentioning: [image, "L2 tables", "corrupt"])
                    #expect(result.stdout.isEmpty, "\(result)")
                }
            }
        }
    }
}
