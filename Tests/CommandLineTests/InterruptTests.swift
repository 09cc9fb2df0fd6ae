import Foundation
import Testing

extension CopyIntegration {
    @Suite("SIGINT mid-copy", .serialized)
    struct InterruptTests {
        /// Waits until `path` exists (the copy has really started), then a little longer, then sends SIGINT.
        static func interrupt(_ copy: ChildProcess, whenExists path: String) async throws -> CommandResult {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            while !FileFacts.exists(path) && copy.isRunning && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(FileFacts.exists(path), "\(path) did not appear while copying")
            try await Task.sleep(for: .seconds(1))
            try #require(
                copy.isRunning, "the copy ended before SIGINT; the source is not slow enough: \(copy.result())")
            copy.interrupt()
            return try await copy.waitForExit(timeout: .seconds(30))
        }

        /// About 42 MiB of data behind nbdkit's rate filter at 2 Mbit/s (its rate is in bits): a copy would take
        /// minutes.
        static func slowSource(_ fx: Fixture) async throws -> NBDServer {
            try await NBDServer.nbdkit(
                fx, ["--filter=rate", "sparse-random", "size=64M", "seed=1", "percent=50", "rate=2M"])
        }

        @Test("Full copy: exit 130, no target, no temporary file", .timeLimit(.minutes(2)))
        func fullCopy() async throws {
            try await Fixture.run { fx in
                let server = try await Self.slowSource(fx)
                let target = fx.target()
                let copy = try Pullback.startCopy(fx, [server.uri(), target])
                let result = try await Self.interrupt(copy, whenExists: Pullback.partialPath(for: target))
                expectCleanFailure(result, exitCode: 130, mentioning: ["pullback: error: interrupted"])
                expectNoCopyLeft(at: target)
                #expect(try FileFacts.listing(fx.outDir).isEmpty)
            }
        }

        @Test("--overwrite full copy: exit 130, the old target is intact", .timeLimit(.minutes(2)))
        func overwrite() async throws {
            try await Fixture.run { fx in
                let server = try await Self.slowSource(fx)
                let target = fx.target()
                let old = Data(repeating: 0xAB, count: mib)
                try FileFacts.create(target, with: old)
                let copy = try Pullback.startCopy(fx, [server.uri(), target, "--overwrite"])
                let result = try await Self.interrupt(copy, whenExists: Pullback.partialPath(for: target))
                expectCleanFailure(result, exitCode: 130, mentioning: ["pullback: error: interrupted"])
                #expect(try FileFacts.contents(target) == old, "the old target changed")
                expectNoCopyLeft(at: target, targetExistedBefore: true)
            }
        }

        @Test(
            "Incremental: exit 130, the marker stays, the next incremental is refused, --overwrite recovers",
            .timeLimit(.minutes(2)))
        func incremental() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io("write -P 0x11 0 1M")
                let target = try await image.fullCopyWithBitmap("b0")

                // 32 MiB dirty, read at 2 MiB/s: the incremental would take about 16 s.
                try await image.io("write -P 0x22 0 32M")
                var server = try await image.serve(bitmap: "b0", throttleBytesPerSecond: 2 * mib)
                let marker = Pullback.markerPath(for: target)
                let copy = try Pullback.startCopy(fx, [server.uri(), target, "--bitmap", "b0"])
                let result = try await Self.interrupt(copy, whenExists: marker)
                server.stop()
                expectCleanFailure(result, exitCode: 130, mentioning: ["pullback: error: interrupted"])
                try #require(FileFacts.exists(marker), "the marker must stay after an interrupted incremental")

                server = try await image.serve(bitmap: "b0")
                let before = try FileFacts.contents(target)
                let refused = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0"])
                expectCleanFailure(refused, mentioning: ["--overwrite"])
                #expect(try FileFacts.contents(target) == before, "a refused incremental changed the target")
                #expect(FileFacts.exists(marker), "a refused incremental removed the marker")

                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target, "--overwrite"]))
                server.stop()
                #expect(!FileFacts.exists(marker), "--overwrite full copy must remove the marker")
                try await expectMatches(fx, target: target, image: image)
                #expect(try FileFacts.listing(fx.outDir) == ["target.raw"])
            }
        }
    }
}
