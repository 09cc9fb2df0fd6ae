import Foundation
import Testing

extension CopyIntegration {
    @Suite("Full copy of a 1 TiB sparse export", .serialized)
    struct LargeSparseCopyTests {
        static let size: UInt64 = 1 << 40
        /// Three 1 MiB regions: the start, the middle (across the 512 GiB window boundary) and the very end.
        static let regions: [(offset: UInt64, pattern: [UInt8])] = [
            (0, [0x11, 0x22, 0x33, 0x44]),
            ((512 << 30) - UInt64(mib / 2), [0x55]),
            ((1 << 40) - UInt64(mib), [0x66, 0x77]),
        ]

        static func pattern(_ bytes: [UInt8], count: Int) -> Data {
            Data((0..<count).map { bytes[$0 % bytes.count] })
        }

        @Test("Completes quickly, 1 TiB apparent, a few MiB allocated, data in place", .timeLimit(.minutes(3)))
        func oneTebibyte() async throws {
            try await Fixture.run { fx in
                let script = Self.regions.map { region in
                    "@\(region.offset) ("
                        + region.pattern.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
                        + ")*\(mib / region.pattern.count)"
                }.joined(separator: " ")
                let server = try await NBDServer.nbdkit(fx, ["data", script, "size=1T"])
                let target = fx.target()

                let result = try await Pullback.copy(fx, [server.uri(), target, "--json"], timeout: .seconds(170))
                try requireSuccess(result)

                #expect(try FileFacts.size(target) == Int64(Self.size))
                let allocated = try FileFacts.allocated(target)
                #expect(allocated < Int64(64 * mib), "1 TiB target allocates \(allocated) bytes")
                for region in Self.regions {
                    let bytes = try FileFacts.bytes(target, at: region.offset, count: mib)
                    #expect(bytes == Self.pattern(region.pattern, count: mib), "wrong data at offset \(region.offset)")
                }
                #expect(try FileFacts.bytes(target, at: Self.size - 1, count: 1) == Data([0x77]), "last byte")
                #expect(try FileFacts.bytes(target, at: UInt64(mib), count: 4096) == Data(count: 4096))
                #expect(try FileFacts.bytes(target, at: 700 << 30, count: 4096) == Data(count: 4096))
                try await expectMatchesExport(fx, target: target, uri: server.uri())

                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.exportSize == Int64(Self.size))
                #expect(stats.bytesRead >= Int64(3 * mib) && stats.bytesRead <= Int64(64 * mib), "\(stats)")
                // The middle region is cut by a window boundary but is one extent.
                #expect(stats.extents == 3, "\(stats)")
            }
        }
    }
}
