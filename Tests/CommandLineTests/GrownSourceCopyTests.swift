import Foundation
import Testing

extension CopyIntegration {
    /// `pullback copy --format qcow2 --bitmap NAME --backing PARENT` from a source grown since PARENT: the overlay is
    /// larger than its backing, and what lies past the old end is copied as a full copy would, whatever the bitmap
    /// says there; a source smaller than PARENT is refused.
    @Suite("qcow2 overlays over a shorter backing", .serialized)
    struct GrownSourceCopyTests {
        @Test(
            "A grown source: the overlay holds the data past the old end that the bitmap leaves clean",
            .timeLimit(.minutes(1)))
        func grownSource() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io("write -P 0x11 0 1M", "write -P 0x12 \(64 * mib - 512) 512")
                let parent = fx.target("0-full.qcow2")
                let server = try await image.serve()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), parent, "--format", "qcow2"]))
                server.stop()

                try await image.addBitmap("b0")
                try await fx.runChecked(["qemu-img", "resize", "-q", "-f", "qcow2", image.path, "96M"])
                try await image.io("write -P 0x21 2M 64k", "write -P 0x23 \(64 * mib - 512) 4k")
                // Written while the bitmap does not record: data past the old end that it leaves clean (QEMU leaves
                // a resize's new region clean too: a bitmap says nothing about it).
                try await fx.runChecked(["qemu-img", "bitmap", "--disable", image.path, "b0"])
                try await image.io("write -P 0x22 80M 1M")
                let dirty = try await image.serve(bitmap: "b0")
                let overlay = fx.target("1-grown.qcow2")
                let result = try await Pullback.copy(
                    fx, [dirty.uri(), overlay, "--format", "qcow2", "--bitmap", "b0", "--backing", parent, "--json"])
                dirty.stop()
                try requireSuccess(result)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.mode == "incremental" && stats.exportSize == Int64(96 * mib), "\(stats)")

                let chain = try await Qemu.chain(overlay, using: fx)
                #expect(chain.map(\.virtualSize) == [Int64(96 * mib), Int64(64 * mib)], "\(chain)")
                try await Qemu.expectCheckClean(fx, overlay)
                let reference = try await image.rawReference()
                try await Qemu.expectIdentical(fx, overlay, reference)
                let ours = fx.path("ours.raw")
                try await Qemu.convertToRaw(overlay, to: ours, using: fx)
                try await expectSameBytes(fx, ours, reference)
            }
        }

        @Test("A source smaller than the backing is refused, and nothing is made", .timeLimit(.minutes(1)))
        func shrunkSource() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io("write -P 0x11 0 1M")
                let parent = fx.target("0-full.qcow2")
                let server = try await image.serve()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), parent, "--format", "qcow2"]))
                server.stop()
                try await image.addBitmap("b0")
                try await fx.runChecked(["qemu-img", "resize", "-q", "-f", "qcow2", "--shrink", image.path, "48M"])
                let dirty = try await image.serve(bitmap: "b0")
                let overlay = fx.target("1-shrunk.qcow2")
                let result = try await Pullback.copy(
                    fx, [dirty.uri(), overlay, "--format", "qcow2", "--bitmap", "b0", "--backing", parent])
                dirty.stop()
                expectCleanFailure(result, mentioning: ["more than the source", "full copy"])
                #expect(!FileManager.default.fileExists(atPath: overlay))
            }
        }
    }
}
