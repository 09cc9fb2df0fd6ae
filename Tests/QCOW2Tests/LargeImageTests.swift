import Foundation
import QCOW2
import TestSupport
import Testing

extension QCOW2ReaderTests {
    /// A sparse 1 TiB disk: map and statistics walk L1 then L2, so time and memory follow what is
    /// allocated, not the size of the disk.
    @Suite(.timeLimit(.minutes(3)))
    struct LargeImage {
        static let tebibyte: UInt64 = 1 << 40

        @Test("map and statistics of a sparse 1 TiB image are quick and small", arguments: [4096, 65536])
        func sparseTebibyte(clusterSize: Int) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let path = directory.file("large.qcow2")
            let size = Self.tebibyte
            try await Qemu.create(path, size: size, options: ["-o", "cluster_size=\(clusterSize)"])
            try await Qemu.io(
                path,
                [
                    "write -P 0x01 0 65536", "write -P 0x02 549755813888 100000", "write -z -u 824633720832 65536",
                    "write -P 0x03 \(size - 65536) 65536",
                ])
            let residentBefore = Self.residentBytes()
            let clock = ContinuousClock()
            let start = clock.now

            let chain = try QCOW2Chain.open(path: path)
            let extents = try chain.map(0..<size)
            try Check.coversExactly(extents, 0..<size)
            #expect(extents.count <= 8, "\(extents)")
            #expect(extents.filter { $0.kind == .data }.map(\.offset) == [0, 549_755_813_888, size - 65536])
            #expect(
                extents.contains { $0 == ChainExtent(offset: 824_633_720_832, length: 65536, kind: .zero, layer: 0) })
            let statistics = try chain.layerStatistics()
            let cluster = UInt64(clusterSize)
            #expect(statistics[0].zeroBytes == 65536)
            #expect(statistics[0].dataBytes == 65536 + (100_000 + cluster - 1) / cluster * cluster + 65536)
            #expect(try chain.read(count: 100_000, at: 549_755_813_888).allSatisfy { $0 == 0x02 })
            #expect(try chain.read(count: 65536, at: size - 65536).allSatisfy { $0 == 0x03 })
            #expect(try chain.read(count: 1 << 20, at: 300_000_000_000).allSatisfy { $0 == 0 })

            let elapsed = clock.now - start
            #expect(elapsed < .seconds(20), "took \(elapsed)")
            // A per-cluster array would take hundreds of MiB (2^28 clusters of 4 KiB); the L1 table of the
            // 4 KiB image is 4 MiB, the caches a few MiB more.
            let growth = Self.residentBytes() - residentBefore
            #expect(growth < 96 << 20, "resident memory grew by \(growth >> 20) MiB")
            // qemu agrees on where the data and zeros are.
            let qemuExtents = try await Qemu.map(path).filter(\.present)
            #expect(qemuExtents.map { UInt64($0.start) } == extents.filter { $0.kind != .unallocated }.map(\.offset))
        }

        /// Resident memory now, from /proc/self/statm.
        static func residentBytes() -> Int {
            guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
            let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        }
    }
}
