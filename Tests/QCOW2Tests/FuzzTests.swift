import Foundation
import QCOW2
import TestSupport
import Testing

extension QCOW2ReaderTests {
    /// Random damage to the header, L1 and L2 tables of a small real image: any QCOW2Error is fine; a
    /// crash, a hang or another error type is a failure.
    @Suite(.timeLimit(.minutes(3)))
    struct Fuzz {
        static let iterations = 2000
        static let timeBudget: Duration = .seconds(20)

        @Test("mutated headers and tables never crash or hang the reader")
        func mutations() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let base = directory.file("base.qcow2")
            let path = directory.file("fuzz.qcow2")
            // 4 KiB clusters keep the file small; compressed, zero and data clusters, and a backing file
            // whose name the mutations can damage too.
            try await Qemu.create(base, size: 300_000, options: ["-o", "cluster_size=4096"])
            try await Qemu.io(base, ["write -P 0x10 0 300000"])
            let compressed = directory.file("compressed.qcow2")
            try await runTool(["qemu-img", "convert", "-c", "-O", "qcow2", "-o", "cluster_size=4096", base, compressed])
            try await Qemu.createOverlay(path, backing: "compressed.qcow2", backingFormat: "qcow2", size: 600_000)
            try await Qemu.io(
                path,
                [
                    "write -P 0x20 5000 20000", "write -z 40960 8192", "write -z -u 65536 4096",
                    "write -P 0x21 500000 9000",
                ])
            let pristine = try ImageBytes.read(path)

            let l1Offset = Int(ImageBytes.u64(pristine, at: 40))
            let l1Size = Int(ImageBytes.u32(pristine, at: 36))
            let l2Offsets = (0..<l1Size).map {
                Int(ImageBytes.u64(pristine, at: l1Offset + 8 * $0) & 0x00FF_FFFF_FFFF_FE00)
            }
            .filter { $0 != 0 }
            // Regions worth damaging: the header cluster's used part, the L1 table and the L2 tables.
            let regions = [0..<512, l1Offset..<l1Offset + l1Size * 8] + l2Offsets.map { $0..<$0 + 4096 }

            var generator = SeededRandom(seed: 0x5EED)
            var outcomes: [String: Int] = [:]
            let clock = ContinuousClock()
            let start = clock.now
            var iteration = 0
            while iteration < Self.iterations, clock.now - start < Self.timeBudget {
                iteration += 1
                var bytes = pristine
                for _ in 0..<(1 + Int(generator.next() % 6)) {
                    let region = regions[Int(generator.next() % UInt64(regions.count))]
                    Self.mutate(&bytes, in: region, &generator)
                }
                try ImageBytes.write(bytes, to: path)
                do throws(QCOW2Error) {
                    let chain = try QCOW2Chain.open(path: path)
                    _ = try chain.map(0..<chain.size)
                    _ = try chain.layerStatistics()
                    let readable = min(chain.size, 2 << 20)
                    _ = try chain.read(count: Int(readable), at: 0)
                    for _ in 0..<4 where chain.size > 0 {
                        let offset = generator.next() % chain.size
                        _ = try chain.read(count: Int(min(chain.size - offset, 70_000)), at: offset)
                    }
                    outcomes["read", default: 0] += 1
                } catch {
                    // Typed throws: anything but a QCOW2Error would not compile, so the code is all to check.
                    outcomes["\(error.code)", default: 0] += 1
                }
            }
            #expect(iteration >= 200, "only \(iteration) iterations in \(Self.timeBudget)")
            // Both outcomes must occur, or the mutations are too timid or too destructive to test much.
            #expect(outcomes["read", default: 0] > 0 && outcomes.count > 1, "\(outcomes)")
            print("fuzz: \(iteration) iterations, outcomes \(outcomes.sorted { $0.key < $1.key })")
        }

        /// One random change: a byte, a bit, or a whole 64-bit entry set to a value chosen to hit edge cases.
        static func mutate(_ bytes: inout [UInt8], in region: Range<Int>, _ generator: inout SeededRandom) {
            let clamped = region.clamped(to: 0..<bytes.count)
            guard clamped.count >= 8 else { return }
            let position = clamped.lowerBound + Int(generator.next() % UInt64(clamped.count))
            switch generator.next() % 4 {
            case 0:
                bytes[position] = UInt8(truncatingIfNeeded: generator.next())
            case 1:
                bytes[position] ^= 1 << UInt8(generator.next() % 8)
            default:
                let aligned = min(clamped.upperBound - 8, position & ~7)
                let interesting: [UInt64] = [
                    0, 1, UInt64.max, 1 << 62, 1 << 63, UInt64(bytes.count), UInt64(bytes.count) & ~0xfff,
                    UInt64(bytes.count - 4096) | 1 << 63, 1 << 62 | UInt64(generator.next() % UInt64(bytes.count)),
                    generator.next() & 0x00FF_FFFF_FFFF_F000, generator.next(),
                ]
                let value = interesting[Int(generator.next() % UInt64(interesting.count))]
                ImageBytes.put(value, into: &bytes, at: aligned)
            }
        }
    }
}
