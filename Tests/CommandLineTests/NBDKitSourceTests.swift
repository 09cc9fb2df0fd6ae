import Foundation
import Testing

extension CopyIntegration {
    @Suite("Full copy from nbdkit: odd sizes and generated data", .serialized)
    struct NBDKitSourceTests {
        @Test("A 5000-byte export (not a multiple of 4096) is copied byte for byte", .timeLimit(.minutes(2)))
        func oddSizeExport() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "1 2 3 @4097 0xff", "size=5000"])
                let target = fx.target()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target]))

                var expected = Data(count: 5000)
                expected[0] = 1
                expected[1] = 2
                expected[2] = 3
                expected[4097] = 0xff
                #expect(try FileFacts.contents(target) == expected)

                let reference = fx.path("nbdcopy.raw")
                try await fx.runChecked(["nbdcopy", server.uri(), reference])
                try await expectSameBytes(fx, target, reference)
                expectNoCopyLeft(at: target, targetExistedBefore: true)
            }
        }

        @Test("A TCP URI (nbd://127.0.0.1:PORT/) works like a unix socket", .timeLimit(.minutes(2)))
        func tcpSource() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkitTCP(fx, ["data", "(0x42 0x43)*100000 @1000000 0x99", "size=3M"])
                let target = fx.target()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target]))

                var expected = Data(count: 3 * mib)
                for index in 0..<200_000 {
                    expected[index] = index % 2 == 0 ? 0x42 : 0x43
                }
                expected[1_000_000] = 0x99
                #expect(try FileFacts.contents(target) == expected)
            }
        }

        @Test("A 1-byte export", .timeLimit(.minutes(2)))
        func oneByteExport() async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", "0x5a", "size=1"])
                let target = fx.target()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target]))
                #expect(try FileFacts.contents(target) == Data([0x5a]))
            }
        }

        @Test(
            "An empty export gives an empty target file", .timeLimit(.minutes(2)),
            arguments: [["memory", "size=0"], ["data", "", "size=0"]])
        func emptyExport(plugin: [String]) async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, plugin)
                let target = fx.target()
                let result = try await Pullback.copy(fx, [server.uri(), target, "--json"])
                try requireSuccess(result)
                #expect(FileFacts.exists(target), "no target file for an empty export")
                #expect(try FileFacts.size(target) == 0)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.exportSize == 0 && stats.bytesRead == 0 && stats.bytesWritten == 0, "\(stats)")
                expectNoCopyLeft(at: target, targetExistedBefore: true)
            }
        }

        @Test(
            "An all-zero memory export becomes a hole of the right size", .timeLimit(.minutes(2)),
            arguments: [1 * 1024 * 1024, 12345])
        func zeroMemoryExport(size: Int) async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["memory", "size=\(size)"])
                let target = fx.target()
                let result = try await Pullback.copy(fx, [server.uri(), target, "--json"])
                try requireSuccess(result)
                #expect(try FileFacts.size(target) == Int64(size))
                #expect(try FileFacts.contents(target).allSatisfy { $0 == 0 }, "non-zero bytes in the target")
                #expect(try FileFacts.allocated(target) <= 4096, "zeros were written instead of left as a hole")
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.bytesRead == 0, "an all-hole export needs no reads: \(stats)")
                #expect(stats.zeroBytes == Int64(size), "\(stats)")
            }
        }

        @Test("sparse-random data: the same bytes as nbdcopy makes, and sparse", .timeLimit(.minutes(2)))
        func sparseRandomMatchesNbdcopy() async throws {
            try await Fixture.run { fx in
                // percent=10 alone gives no data at all at 64M with nbdkit 1.32 (its default run length is 64 MiB);
                // runlength=2048 gives about 12 MiB of data in some 3000 extents of 4 KiB and up.
                let server = try await NBDServer.nbdkit(
                    fx, ["sparse-random", "size=64M", "seed=1", "percent=10", "runlength=2048"])
                let target = fx.target()
                let result = try await Pullback.copy(fx, [server.uri(), target, "--json"])
                try requireSuccess(result)

                let reference = fx.path("nbdcopy.raw")
                try await fx.runChecked(["nbdcopy", server.uri(), reference])
                try await expectSameBytes(fx, target, reference)

                let allocated = try FileFacts.allocated(target)
                #expect(allocated <= Int64(24 * mib), "12 MiB of data should not allocate \(allocated) bytes")
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.bytesRead >= Int64(8 * mib) && stats.bytesRead <= Int64(40 * mib), "\(stats)")
            }
        }
    }
}
