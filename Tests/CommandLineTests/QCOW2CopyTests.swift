import Foundation
import Testing

extension CopyIntegration {
    /// `pullback copy --format qcow2` without a chain: full copies judged by qemu-img, odd and huge export sizes,
    /// the refusals, and SIGINT. Overlays and chains are in `QCOW2ChainTests`.
    @Suite("qcow2 target: full copies, odd sizes, 1 TiB, refusals, SIGINT", .serialized)
    struct QCOW2CopyTests {
        @Test(
            "Full copy of a qcow2 source: check clean, identical, sparse, qcow2 v3 with 64 KiB clusters",
            .timeLimit(.minutes(1)))
        func fullCopy() async throws {
            try await Fixture.run { fx in
                let size = 64 * mib
                let image = try await QCOW2Image.create(fx, size: size)
                // Data, zeros over data, unaligned writes across 64 KiB clusters, discard, the last byte
                // (`firstRound`), plus one write that straddles two cluster boundaries.
                try await image.io(
                    GuestWrites.base + GuestWrites.firstRound + ["write -P 0x27 \(6 * mib - 1) 65538"])
                let server = try await image.serve()
                let target = fx.target("full.qcow2")

                let result = try await Pullback.copy(fx, [server.uri(), target, "--format", "qcow2", "--json"])
                try requireSuccess(result)
                server.stop()

                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.format == "qcow2", "--json must say the format: \(result.stdout)")
                #expect(stats.mode == "full" && stats.exportSize == Int64(size), "\(stats)")

                try await Qemu.expectCheckClean(fx, target)
                try await Qemu.expectIdentical(fx, target, image.path, referenceFormat: "qcow2")

                let info = try await Qemu.chain(target, using: fx)
                try #require(info.count == 1, "a full copy has no backing file: \(info)")
                #expect(info[0].format == "qcow2")
                #expect(info[0].compat == "1.1", "qcow2 version 3 expected: \(info[0])")
                #expect(info[0].clusterSize == 65536)
                #expect(info[0].virtualSize == Int64(size))
                #expect(info[0].backingFilename == nil)

                // About 4 MiB of data in a 64 MiB disk.
                let fileSize = try FileFacts.size(target)
                #expect(fileSize < Int64(8 * mib), "qcow2 image is not sparse: \(fileSize) bytes")
                #expect(try FileFacts.allocated(target) < Int64(8 * mib))

                let ours = fx.path("ours.raw")
                try await Qemu.convertToRaw(target, to: ours, using: fx)
                try await expectSameBytes(fx, ours, try await image.rawReference())
                #expect(try FileFacts.listing(fx.outDir) == ["full.qcow2"], "leftovers beside the target")
            }
        }

        @Test("--overwrite replaces an existing file with a new standalone qcow2 image", .timeLimit(.minutes(1)))
        func overwrite() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 16 * mib)
                try await image.io("write -P 0x11 0 1M", "write -P 0x12 \(16 * mib - 3) 3")
                let target = fx.target("full.qcow2")
                try FileFacts.create(target, with: Data(repeating: 0xEE, count: 20 * mib))
                let server = try await image.serve()

                try requireSuccess(
                    try await Pullback.copy(fx, [server.uri(), target, "--format", "qcow2", "--overwrite"]))
                server.stop()
                try await Qemu.expectCheckClean(fx, target)
                try await Qemu.expectIdentical(fx, target, image.path, referenceFormat: "qcow2")
                #expect(try FileFacts.size(target) < Int64(4 * mib), "the old 20 MiB file was not replaced")
                expectNoCopyLeft(at: target, targetExistedBefore: true)
            }
        }

        struct OddSize: Sendable, CustomTestStringConvertible {
            let size: Int
            /// nbdkit `data` plugin script.
            let script: String
            var testDescription: String { "\(size) bytes" }
        }

        static let oddSizes = [
            OddSize(size: 5000, script: "(0x5a)*100 @4990 (0x7e)*10"),
            OddSize(size: 1, script: "0x5a"),
            OddSize(size: 0, script: ""),
            // Data in the last, partial cluster (and sector-aligned end).
            OddSize(size: 3 * 65536 + 512, script: "(0x11)*4096 @196600 (0x77)*520"),
            // Data across a cluster boundary and in the last partial cluster, whose end is not sector-aligned.
            OddSize(size: 3 * 65536 + 700, script: "@65530 (0x22)*12 @196900 (0x78)*408"),
        ]

        /// For every size: `qemu-img check` is clean, the header holds the export's size rounded up to 512 bytes (qemu
        /// reads qcow2 sizes in whole sectors and would drop a partial one), the image converts to exactly the
        /// export's bytes followed by zeros, and `qemu-img compare -F raw` against the export says identical.
        @Test("Odd export sizes to a standalone qcow2", .timeLimit(.minutes(1)), arguments: oddSizes)
        func oddSize(_ odd: OddSize) async throws {
            try await Fixture.run { fx in
                let server = try await NBDServer.nbdkit(fx, ["data", odd.script, "size=\(odd.size)"])
                let target = fx.target("odd.qcow2")
                let result = try await Pullback.copy(fx, [server.uri(), target, "--format", "qcow2", "--json"])
                try requireSuccess(result)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.exportSize == Int64(odd.size) && stats.format == "qcow2", "\(stats)")

                try await Qemu.expectCheckClean(fx, target)
                let exported = fx.path("export.raw")
                try await fx.runChecked(["nbdcopy", server.uri(), exported])
                try #require(try FileFacts.size(exported) == Int64(odd.size))

                // qemu reads qcow2 sizes in whole sectors, so the image's size is the export's rounded up to 512
                // bytes (as `qemu-img create` does); the bytes past the export's end read as zeros.
                let rounded = UInt64((odd.size + 511) / 512 * 512)
                #expect(try Qemu.headerSize(target) == rounded, "header size for an export of \(odd.size) bytes")
                let qemuSize = try await Qemu.chain(target, using: fx)[0].virtualSize
                #expect(qemuSize == Int64(rounded), "qemu sees \(qemuSize) bytes of \(odd.size)")

                let converted = fx.path("converted.raw")
                try await Qemu.convertToRaw(target, to: converted, using: fx)
                #expect(try FileFacts.size(converted) == Int64(rounded))
                let cmp = try await fx.run(["cmp", "-n", String(odd.size), converted, exported])
                #expect(cmp.succeeded, "bytes differ from the export: \(cmp)")
                let tail = try FileFacts.bytes(converted, at: UInt64(odd.size), count: Int(rounded) - odd.size)
                #expect(tail.allSatisfy { $0 == 0 }, "bytes past the export's end are not zero")

                // qemu-img compare accepts a size difference when the longer image's extra bytes are zeros.
                let compare = try await fx.run(["qemu-img", "compare", "-f", "qcow2", target, "-F", "raw", exported])
                #expect(
                    compare.succeeded && compare.stdout.contains("Images are identical"),
                    "qemu-img compare with the export: \(compare)")
            }
        }

        static let tebibyte: Int64 = 1 << 40
        /// A few bytes far apart in 1 TiB: the first, two across the 4 GiB boundary (and a cluster boundary), two
        /// in the middle, the last.
        static let sparseBytes: [(offset: Int64, bytes: [UInt8])] = [
            (0, [0x11]),
            ((4 << 30) - 1, [0x33, 0x34]),
            ((512 << 30) + 12345, [0x22, 0x23]),
            (tebibyte - 1, [0x44]),
        ]

        @Test("1 TiB sparse export to qcow2: fast, small, data only where the bytes are", .timeLimit(.minutes(3)))
        func oneTebibyte() async throws {
            try await Fixture.run { fx in
                let script = Self.sparseBytes.map { entry in
                    "@\(entry.offset) " + entry.bytes.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
                }.joined(separator: " ")
                let server = try await NBDServer.nbdkit(fx, ["data", script, "size=1T"])
                let target = fx.target("big.qcow2")

                let result = try await Pullback.copy(
                    fx, [server.uri(), target, "--format", "qcow2", "--json"], timeout: .seconds(170))
                try requireSuccess(result)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.exportSize == Self.tebibyte && stats.format == "qcow2", "\(stats)")
                #expect(stats.bytesRead <= Int64(64 * mib), "holes were read: \(stats)")

                try await Qemu.expectCheckClean(fx, target)
                let fileSize = try FileFacts.size(target)
                #expect(fileSize < Int64(64 * mib), "1 TiB qcow2 image is \(fileSize) bytes")
                #expect(try await Qemu.chain(target, using: fx)[0].virtualSize == Self.tebibyte)

                // Data clusters are exactly the 64 KiB clusters holding the bytes.
                let map = try await Qemu.map(target, using: fx)
                let dataRanges = map.filter(\.data).map(\.range)
                let dataBytes = dataRanges.reduce(Int64(0)) { $0 + Int64($1.count) }
                try #require(dataBytes < Int64(64 * mib), "\(dataBytes) bytes of data mapped")
                let expected = Qemu.clusters(
                    Self.sparseBytes.map { $0.offset..<($0.offset + Int64($0.bytes.count)) })
                let mapped = Qemu.clusters(dataRanges)
                #expect(
                    mapped == expected,
                    "data clusters \(mapped.sorted()) instead of \(expected.sorted())")

                // The bytes read back, and zeros right around them.
                var reads: [String] = []
                for entry in Self.sparseBytes {
                    for (index, byte) in entry.bytes.enumerated() {
                        reads.append("read -P 0x\(String(byte, radix: 16)) \(entry.offset + Int64(index)) 1")
                    }
                    let before = min(entry.offset, 4096)
                    if before > 0 { reads.append("read -P 0 \(entry.offset - before) \(before)") }
                    let end = entry.offset + Int64(entry.bytes.count)
                    let after = min(Self.tebibyte - end, 4096)
                    if after > 0 { reads.append("read -P 0 \(end) \(after)") }
                }
                reads.append("read -P 0 \(300 << 30) 65536")
                try await Qemu.expectReads(fx, target, reads)
            }
        }

        /// Each refusal: exit 1, one `pullback: error:` line, nothing at TARGET, no partial file, the backing file
        /// untouched.
        enum Refusal: String, CaseIterable, Sendable, CustomTestStringConvertible {
            case targetExists = "TARGET exists, full copy without --overwrite"
            case overlayTargetExists = "TARGET exists, overlay without --overwrite"
            case bitmapWithoutBacking = "--bitmap without --backing"
            case backingWithoutBitmap = "--backing without --bitmap"
            case backingWithRawFormat = "--backing with --format raw"
            case backingWithDefaultFormat = "--backing without --format"
            case backingLarger = "backing image larger than the source"
            case backingIsRaw = "backing is a raw file"
            case backingIsGarbage = "backing is garbage"
            case backingMissing = "backing does not exist"
            case bitmapNotOffered = "bitmap not offered by the server"

            var testDescription: String { rawValue }
        }

        @Test("Refusals", .timeLimit(.minutes(1)), arguments: Refusal.allCases)
        func refusal(_ refusal: Refusal) async throws {
            try await Fixture.run { fx in
                let size = 16 * mib
                let image = try await QCOW2Image.create(fx, size: size)
                try await image.io("write -P 0x11 0 1M")
                try await image.addBitmap("b0")
                try await image.io("write -P 0x22 0 64k")
                let server = try await image.serve(bitmap: "b0")

                let chain = try fx.makeDirectory("chain")
                var backing = chain + "/parent.qcow2"
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", backing, String(size)])
                let target = fx.target("overlay.qcow2")
                let overlay = ["--format", "qcow2", "--bitmap", "b0", "--backing", backing]
                var arguments: [String]
                var mentioning: [String]
                var existing: Data?
                switch refusal {
                case .targetExists:
                    existing = Data(repeating: 0xAB, count: 4096)
                    arguments = ["--format", "qcow2"]
                    mentioning = ["--overwrite"]
                case .overlayTargetExists:
                    existing = Data(repeating: 0xAB, count: 4096)
                    arguments = overlay
                    mentioning = ["--overwrite"]
                case .bitmapWithoutBacking:
                    arguments = ["--format", "qcow2", "--bitmap", "b0"]
                    mentioning = ["--backing"]
                case .backingWithoutBitmap:
                    arguments = ["--format", "qcow2", "--backing", backing]
                    mentioning = ["--bitmap"]
                case .backingWithRawFormat:
                    arguments = ["--format", "raw", "--bitmap", "b0", "--backing", backing]
                    mentioning = ["--backing", "qcow2"]
                case .backingWithDefaultFormat:
                    arguments = ["--bitmap", "b0", "--backing", backing]
                    mentioning = ["--backing", "qcow2"]
                case .backingLarger:
                    // A smaller backing is a disk grown since (GrownSourceCopyTests); a larger one cannot be its past.
                    backing = chain + "/large.qcow2"
                    try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", backing, String(32 * mib)])
                    arguments = ["--format", "qcow2", "--bitmap", "b0", "--backing", backing]
                    mentioning = ["large.qcow2", String(32 * mib), "shrank"]
                case .backingIsRaw:
                    backing = chain + "/parent.raw"
                    try FileFacts.create(backing, with: Data(repeating: 0x11, count: size))
                    arguments = ["--format", "qcow2", "--bitmap", "b0", "--backing", backing]
                    mentioning = ["parent.raw", "qcow2"]
                case .backingIsGarbage:
                    backing = chain + "/garbage.qcow2"
                    try FileFacts.create(backing, with: Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }))
                    arguments = ["--format", "qcow2", "--bitmap", "b0", "--backing", backing]
                    mentioning = ["garbage.qcow2"]
                case .backingMissing:
                    backing = chain + "/missing.qcow2"
                    arguments = ["--format", "qcow2", "--bitmap", "b0", "--backing", backing]
                    mentioning = ["missing.qcow2"]
                case .bitmapNotOffered:
                    arguments = ["--format", "qcow2", "--bitmap", "nosuch", "--backing", backing]
                    mentioning = ["nosuch"]
                }
                if let existing { try FileFacts.create(target, with: existing) }
                let backingBefore = FileFacts.exists(backing) ? try FileFacts.contents(backing) : nil
                let chainBefore = try FileFacts.listing(chain)

                let result = try await Pullback.copy(fx, [server.uri(), target] + arguments)
                expectCleanFailure(result, exitCode: 1, mentioning: mentioning)
                expectNoCopyLeft(at: target, targetExistedBefore: existing != nil)
                if let existing {
                    #expect(try FileFacts.contents(target) == existing, "the existing target changed")
                    #expect(try FileFacts.listing(fx.outDir) == ["overlay.qcow2"])
                } else {
                    #expect(try FileFacts.listing(fx.outDir).isEmpty, "something was left in the target directory")
                }
                if let backingBefore {
                    #expect(try FileFacts.contents(backing) == backingBefore, "the backing file changed")
                }
                #expect(try FileFacts.listing(chain) == chainBefore, "files appeared beside the backing file")
            }
        }

        @Test("A failing --overwrite leaves the old image byte-identical", .timeLimit(.minutes(1)))
        func failedOverwriteKeepsOldImage() async throws {
            try await Fixture.run { fx in
                let size = 16 * mib
                let image = try await QCOW2Image.create(fx, size: size)
                try await image.io("write -P 0x11 0 1M")
                let target = fx.target("point.qcow2")
                var server = try await image.serve()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target, "--format", "qcow2"]))
                server.stop()
                let parent = fx.path("parent.qcow2")
                try FileManager.default.copyItem(atPath: target, toPath: parent)
                // Larger than the source: not its past (a smaller backing would be a disk grown since, and copy).
                let large = fx.path("large.qcow2")
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", large, String(size * 2)])

                try await image.addBitmap("b0")
                try await image.io("write -P 0x22 0 64k")
                server = try await image.serve(bitmap: "b0")
                let old = try FileFacts.contents(target)
                let inode = try FileFacts.inode(target)
                let attempts: [(arguments: [String], mentioning: [String])] = [
                    (["--bitmap", "nosuch", "--backing", parent], ["nosuch"]),
                    (["--bitmap", "b0", "--backing", large], ["large.qcow2"]),
                ]
                for attempt in attempts {
                    let result = try await Pullback.copy(
                        fx, [server.uri(), target, "--format", "qcow2", "--overwrite"] + attempt.arguments)
                    expectCleanFailure(result, mentioning: attempt.mentioning)
                    #expect(try FileFacts.contents(target) == old, "the old image changed: \(attempt.arguments)")
                    #expect(try FileFacts.inode(target) == inode, "the old image was replaced")
                    expectNoCopyLeft(at: target, targetExistedBefore: true)
                    #expect(try FileFacts.listing(fx.outDir) == ["point.qcow2"])
                }
                // And the same command with a good bitmap does replace it.
                try requireSuccess(
                    try await Pullback.copy(
                        fx,
                        [
                            server.uri(), target, "--format", "qcow2", "--overwrite", "--bitmap", "b0", "--backing",
                            parent,
                        ]))
                server.stop()
                try await Qemu.expectCheckClean(fx, target)
                try await Qemu.expectIdentical(fx, target, try await image.rawReference())
            }
        }

        @Test("SIGINT during a qcow2 full copy: exit 130, no target, no temporary file", .timeLimit(.minutes(1)))
        func interruptedFullCopy() async throws {
            try await Fixture.run { fx in
                let server = try await InterruptTests.slowSource(fx)
                let target = fx.target("slow.qcow2")
                let copy = try Pullback.startCopy(fx, [server.uri(), target, "--format", "qcow2"])
                let result = try await InterruptTests.interrupt(copy, whenExists: Pullback.partialPath(for: target))
                expectCleanFailure(result, exitCode: 130, mentioning: ["pullback: error: interrupted"])
                expectNoCopyLeft(at: target)
                #expect(try FileFacts.listing(fx.outDir).isEmpty)
            }
        }

        @Test(
            "SIGINT during a qcow2 overlay with --overwrite: exit 130, old file and parent intact",
            .timeLimit(.minutes(1)))
        func interruptedOverlay() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io("write -P 0x11 0 1M")
                let chain = try fx.makeDirectory("chain")
                let parent = chain + "/0.qcow2"
                var server = try await image.serve()
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), parent, "--format", "qcow2"]))
                server.stop()
                let parentBefore = try FileFacts.contents(parent)

                try await image.addBitmap("b0")
                // 32 MiB dirty, read at 2 MiB/s: the overlay would take about 16 s.
                try await image.io("write -P 0x22 0 32M")
                server = try await image.serve(bitmap: "b0", throttleBytesPerSecond: 2 * mib)
                let target = chain + "/1.qcow2"
                let old = Data(repeating: 0xAB, count: 8192)
                try FileFacts.create(target, with: old)
                let copy = try Pullback.startCopy(
                    fx,
                    [server.uri(), target, "--format", "qcow2", "--bitmap", "b0", "--backing", parent, "--overwrite"])
                let result = try await InterruptTests.interrupt(copy, whenExists: Pullback.partialPath(for: target))
                server.stop()
                expectCleanFailure(result, exitCode: 130, mentioning: ["pullback: error: interrupted"])
                #expect(try FileFacts.contents(target) == old, "the old file changed")
                expectNoCopyLeft(at: target, targetExistedBefore: true)
                #expect(try FileFacts.contents(parent) == parentBefore, "the parent changed")
                #expect(try FileFacts.listing(chain) == ["0.qcow2", "1.qcow2"])
            }
        }
    }
}
