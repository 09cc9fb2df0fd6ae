import Foundation
import Testing

extension CopyIntegration {
    @Suite("Errors on the target side", .serialized)
    struct TargetErrorTests {
        @Test(
            "An existing target without --bitmap or --overwrite is refused and left as it was", .timeLimit(.minutes(1)))
        func existingTargetRefused() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "(0x11)*65536", "size=1M"])
                let target = fx.target()
                // Same size as the export, so only the rule, not a size check, can refuse it.
                let old = Data(repeating: 0xAB, count: mib)
                try FileFacts.create(target, with: old)
                let inode = try FileFacts.inode(target)

                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target]))
                #expect(try FileFacts.contents(target) == old, "existing target changed")
                #expect(try FileFacts.inode(target) == inode, "existing target replaced")
                expectNoCopyLeft(at: target, targetExistedBefore: true)
            }
        }

        @Test("--bitmap with an existing target of another size is refused, target untouched", .timeLimit(.minutes(1)))
        func sizeMismatchWithBitmap() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io("write -P 0x11 0 1M")
                try await image.addBitmap("b0")
                try await image.io("write -P 0x22 0 64k")
                let server = try await image.serve(bitmap: "b0")
                let target = fx.target()
                let old = Data(repeating: 0xAB, count: mib)
                try FileFacts.create(target, with: old)

                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0"]))
                #expect(try FileFacts.contents(target) == old, "target changed")
                #expect(!FileFacts.exists(Pullback.markerPath(for: target)), "marker left by a refused incremental")
            }
        }

        @Test("The target's directory does not exist", .timeLimit(.minutes(1)))
        func missingDirectory() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "(0x11)*65536", "size=1M"])
                let target = fx.outDir + "/nosuch/target.raw"
                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target]))
                #expect(!FileFacts.exists(fx.outDir + "/nosuch"), "the missing directory was created")
                #expect(try FileFacts.listing(fx.outDir).isEmpty)
            }
        }

        @Test("The target is a directory: --overwrite fails and leaves it alone", .timeLimit(.minutes(1)))
        func targetIsDirectory() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "(0x11)*65536", "size=1M"])
                let target = fx.target("dir")
                try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
                try FileFacts.create(target + "/keep", with: Data([1, 2, 3]))
                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target]))
                server.stop()
                let second = try await NBDServer.nbdkit(fx, ["data", "(0x11)*65536", "size=1M"])
                expectCleanFailure(try await Pullback.copy(fx, [second.uri(), target, "--overwrite"]))
                #expect(try FileFacts.listing(target) == ["keep"])
                #expect(try FileFacts.listing(fx.outDir) == ["dir"], "leftovers beside the target")
            }
        }

        @Test("A target on a read-only mount", .timeLimit(.minutes(1)))
        func readOnlyMount() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "(0x11)*65536", "size=1M"])

                let readOnly = try await fx.mountTmpfs("ro", options: "ro,size=1M")
                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), readOnly + "/target.raw"]))
                #expect(try FileFacts.listing(readOnly).isEmpty)

                // An existing target on a mount that became read-only: --overwrite fails, target intact.
                let remounted = try await fx.mountTmpfs("rw", options: "size=4M")
                let target = remounted + "/target.raw"
                let old = Data(repeating: 0xAB, count: 64 * kib)
                try FileFacts.create(target, with: old)
                try await fx.remount(remounted, options: "remount,ro")
                server.stop()  // a fresh server: nbdkit 1.32 may die when a client drops it mid-read
                let second = try await NBDServer.nbdkit(fx, ["data", "(0x11)*65536", "size=1M"])
                expectCleanFailure(try await Pullback.copy(fx, [second.uri(), target, "--overwrite"]))
                #expect(try FileFacts.contents(target) == old)
                #expect(try FileFacts.listing(remounted) == ["target.raw"])
            }
        }

        @Test("Target disk full: error mentions space, nothing left behind", .timeLimit(.minutes(1)))
        func diskFull() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["random", "size=8M"])
                let small = try await fx.mountTmpfs("small", options: "size=1M")
                let target = small + "/target.raw"

                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target]), mentioning: ["space"])
                let left = try FileFacts.listing(small)
                #expect(left.isEmpty, "left on the full disk: \(left)")

                // nbdkit 1.32 can die on an assertion when a client drops its connections mid-read, so the second
                // case gets a server of its own.
                server.stop()
                let second = try await NBDServer.nbdkit(fx, ["random", "size=8M"])
                let old = Data(repeating: 0xAB, count: 128 * kib)
                try FileFacts.create(target, with: old)
                expectCleanFailure(
                    try await Pullback.copy(fx, [second.uri(), target, "--overwrite"]), mentioning: ["space"])
                #expect(try FileFacts.contents(target) == old, "existing target changed")
                #expect(try FileFacts.listing(small) == ["target.raw"])
            }
        }

        @Test("Disk full during an incremental: exit 1, the target stays marked incomplete", .timeLimit(.minutes(1)))
        func diskFullIncremental() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 16 * mib)
                try await image.io("write -P 0x11 0 512k")
                try await image.addBitmap("b0")
                let small = try await fx.mountTmpfs("small", options: "size=1M")
                let target = small + "/target.raw"
                var server = try await image.serve()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target]))
                server.stop()

                try await image.io("write -P 0x22 4M 2M")
                server = try await image.serve(bitmap: "b0")
                let result = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0"])
                expectCleanFailure(result, mentioning: ["space"])
                #expect(
                    FileFacts.exists(Pullback.markerPath(for: target)),
                    "a failed incremental must leave the target marked incomplete")
                expectCleanFailure(
                    try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0"]), mentioning: ["--overwrite"])
            }
        }
    }
}
