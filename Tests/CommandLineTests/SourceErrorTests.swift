import Foundation
import Testing

extension CopyIntegration {
    @Suite("Errors on the source side", .serialized)
    struct SourceErrorTests {
        @Test("Unreachable server: the socket path does not exist", .timeLimit(.minutes(1)))
        func missingSocket() async throws {
            try await Fixture.run { fx in
                let uri = "nbd+unix:///?socket=\(fx.path("nosuch.sock"))"
                let target = fx.target()
                expectCleanFailure(try await Pullback.copy(fx, [uri, target], timeout: .seconds(30)))
                expectNoCopyLeft(at: target)

                // An existing target survives a failed --overwrite.
                let old = Data(repeating: 0xAB, count: 64 * kib)
                try FileFacts.create(target, with: old)
                expectCleanFailure(try await Pullback.copy(fx, [uri, target, "--overwrite"], timeout: .seconds(30)))
                #expect(try FileFacts.contents(target) == old, "existing target changed")
                expectNoCopyLeft(at: target, targetExistedBefore: true)
            }
        }

        @Test("Unreachable server: a socket nobody listens on, and a closed TCP port", .timeLimit(.minutes(1)))
        func nothingListening() async throws {
            try await Fixture.run { fx in
                let socket = fx.path("dead.sock")
                try FileFacts.makeDeadSocket(socket)
                let target = fx.target()
                expectCleanFailure(
                    try await Pullback.copy(fx, ["nbd+unix:///?socket=\(socket)", target], timeout: .seconds(30)))
                expectNoCopyLeft(at: target)
                expectCleanFailure(try await Pullback.copy(fx, ["nbd://127.0.0.1:1/", target], timeout: .seconds(30)))
                expectNoCopyLeft(at: target)
            }
        }

        @Test("The server fails reads (EIO): clean error, no target, no temporary file", .timeLimit(.minutes(1)))
        func readErrors() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(
                    fx,
                    [
                        "--filter=error", "data", "(0x11)*1048576 @3145728 (0x22)*4096", "size=4M", "error=EIO",
                        "error-pread-rate=100%",
                    ])
                let target = fx.target()
                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target]))
                expectNoCopyLeft(at: target)
                #expect(try FileFacts.listing(fx.outDir).isEmpty)
            }
        }

        @Test("Unknown export name", .timeLimit(.minutes(1)))
        func unknownExport() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 4 * mib)
                try await image.io("write -P 0x11 0 1M")
                let server = try await image.serve(exportName: "disk")
                let target = fx.target()

                expectCleanFailure(
                    try await Pullback.copy(fx, [server.uri(export: "nosuch"), target], timeout: .seconds(30)))
                expectNoCopyLeft(at: target)

                // The right name on the same server works, so the failure above was about the name.
                try requireSuccess(try await Pullback.copy(fx, [server.uri(export: "disk"), target]))
                server.stop()
                try await expectMatches(fx, target: target, image: image)
            }
        }

        @Test("A bitmap the server does not offer", .timeLimit(.minutes(1)))
        func bitmapNotOffered() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 4 * mib)
                try await image.io("write -P 0x11 0 1M")
                try await image.addBitmap("b0")
                let server = try await image.serve(bitmap: "b0")
                let target = fx.target()

                // No target yet: would be a full copy, but the bitmap is checked first.
                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "nosuch"]))
                expectNoCopyLeft(at: target)

                // An existing good copy: the incremental is refused and the target is untouched.
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target]))
                let before = try FileFacts.contents(target)
                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "nosuch"]))
                #expect(try FileFacts.contents(target) == before, "target changed by a refused incremental")
                #expect(!FileFacts.exists(Pullback.markerPath(for: target)), "marker left by a refused incremental")

                // A server with no dirty bitmaps at all.
                let plain = try await NBDServer.nbdkit(fx, ["memory", "size=4M"])
                let other = fx.target("other.raw")
                expectCleanFailure(try await Pullback.copy(fx, [plain.uri(), other, "--bitmap", "b0"]))
                expectNoCopyLeft(at: other)
            }
        }
    }
}
