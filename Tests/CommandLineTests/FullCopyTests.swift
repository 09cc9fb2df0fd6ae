import Foundation
import Testing

extension CopyIntegration {
    @Suite("Full copy from qemu-nbd", .serialized)
    struct FullCopyTests {
        @Test(
            "A mostly empty qcow2 becomes a sparse raw file with the same bytes; holes are not read",
            .timeLimit(.minutes(2)))
        func sparseFullCopy() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io("write -P 0x11 0 1M", "write -P 0x5c 67108863 1", "write -P 0x3a 3000001 5")
                let server = try await image.serve()
                let target = fx.target()

                let result = try await Pullback.copy(fx, [server.uri(), target, "--json"])
                try requireSuccess(result)
                server.stop()

                try await expectMatches(fx, target: target, image: image)
                #expect(try FileFacts.size(target) == Int64(64 * mib))
                let allocated = try FileFacts.allocated(target)
                #expect(allocated < Int64(4 * mib), "target is not sparse: \(allocated) bytes allocated")
                #expect(try FileFacts.listing(fx.outDir) == ["target.raw"], "something besides the target was left")

                #expect(result.stderr.isEmpty, "stderr is not a terminal, yet something was printed: \(result)")

                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.mode == "full")
                #expect(stats.exportSize == Int64(64 * mib))
                #expect(stats.bytesRead >= Int64(mib), "read less than the data: \(stats)")
                #expect(stats.bytesRead <= Int64(4 * mib), "holes were read: \(stats)")
                #expect(stats.bytesWritten >= Int64(mib) && stats.bytesWritten <= stats.bytesRead, "\(stats)")
                #expect(stats.zeroBytes >= Int64(60 * mib), "holes not counted as zero bytes: \(stats)")
                #expect(stats.extents >= 1)
                #expect(stats.connections == 4, "qemu-nbd -e 8 advertises multi-conn; default is 4: \(stats)")
            }
        }

        @Test("--bitmap with no target yet copies everything, not only the dirty part", .timeLimit(.minutes(2)))
        func bitmapWithoutTargetIsFullCopy() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 32 * mib)
                try await image.io("write -P 0x11 0 4M", "write -P 0x12 20M 1M")
                try await image.addBitmap("b0")
                try await image.io("write -P 0x22 10M 64k")
                let server = try await image.serve(bitmap: "b0")
                let target = fx.target()

                let result = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0", "--json"])
                try requireSuccess(result)
                server.stop()

                try await expectMatches(fx, target: target, image: image)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.mode == "full", "\(stats)")
                #expect(stats.bytesRead >= Int64(5 * mib), "only the dirty part was read: \(stats)")
                #expect(!FileFacts.exists(Pullback.markerPath(for: target)))
                expectNoCopyLeft(at: target, targetExistedBefore: true)
            }
        }

        @Test("--overwrite replaces an existing, larger target atomically with an exact copy", .timeLimit(.minutes(2)))
        func overwriteReplacesTarget() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 8 * mib)
                try await image.io("write -P 0x11 0 1M", "write -P 0x22 3M 4k", "write -P 0x33 8388600 8")
                let target = fx.target()
                // Junk everywhere, also where the source has holes, and longer than the export.
                try FileFacts.create(target, with: Data(repeating: 0xEE, count: 10 * mib))
                let inodeBefore = try FileFacts.inode(target)
                let server = try await image.serve()

                let result = try await Pullback.copy(fx, [server.uri(), target, "--overwrite"])
                try requireSuccess(result)
                server.stop()

                try await expectMatches(fx, target: target, image: image)
                #expect(try FileFacts.size(target) == Int64(8 * mib))
                #expect(try FileFacts.inode(target) != inodeBefore, "target was rewritten in place, not renamed over")
                #expect(try FileFacts.listing(fx.outDir) == ["target.raw"])
            }
        }

        @Test("--connections is used only when the server advertises multi-conn", .timeLimit(.minutes(2)))
        func connectionsFollowMultiConn() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 32 * mib)
                try await image.io(
                    "write -P 0x11 0 2M", "write -P 0x12 5M 2M", "write -P 0x13 11M 2M", "write -P 0x14 17M 2M",
                    "write -P 0x15 23M 2M", "write -P 0x16 29M 3M")

                let multi = try await image.serve(shared: 8)
                let three = try await Pullback.copy(
                    fx, [multi.uri(), fx.target("three.raw"), "--connections", "3", "--json"])
                try requireSuccess(three)
                let byDefault = try await Pullback.copy(fx, [multi.uri(), fx.target("default.raw"), "--json"])
                try requireSuccess(byDefault)
                multi.stop()

                let single = try await image.serve(shared: 1)
                let info = try await fx.runChecked(["nbdinfo", single.uri()])
                try #require(info.stdout.contains("can_multi_conn: false"), "qemu-nbd -e 1 should not offer multi-conn")
                let one = try await Pullback.copy(
                    fx, [single.uri(), fx.target("one.raw"), "--connections", "8", "--json"], timeout: .seconds(40))
                try requireSuccess(one)
                single.stop()

                #expect(try CopyStats.decode(stdout: three.stdout).connections == 3)
                #expect(try CopyStats.decode(stdout: byDefault.stdout).connections == 4)
                #expect(try CopyStats.decode(stdout: one.stdout).connections == 1)
                for name in ["three.raw", "default.raw", "one.raw"] {
                    try await expectMatches(fx, target: fx.target(name), image: image)
                }
            }
        }
    }
}
