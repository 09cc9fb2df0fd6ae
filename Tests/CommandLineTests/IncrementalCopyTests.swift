import Foundation
import Testing

/// The writes of the incremental tests: plain data, zeros over data, writes across 64 KiB cluster (and bitmap
/// granule) boundaries, unaligned small writes, the disk's last byte and discards over data.
enum GuestWrites {
    /// Base content of a 64 MiB disk before the first full copy.
    static let base = [
        "write -P 0x11 0 1M",
        "write -P 0x12 8M 2M",
        "write -P 0x13 16M 64k",
    ]

    static let firstRound = [
        "write -P 0x21 4M 64k",  // data in a hole
        "write -z 0 128k",  // zeros over data: must not keep 0x11 in the target
        "write -P 0x22 524287 3",  // straddles the 512 KiB cluster boundary inside data
        "write -P 0x23 1048575 2",  // straddles the end of the data into a hole
        "write -P 0x24 65535 3",  // straddles a boundary inside the zeroed range
        "write -P 0x25 3000007 13",  // small and unaligned
        "write -P 0x26 67108863 1",  // the last byte of the disk
        "discard 8M 1M",  // discard over data
        "write -z 10000 5000",  // unaligned zeros inside the zeroed range's neighbour
    ]

    static let secondRound = [
        "write -P 0x31 100 200",  // data again inside the range zeroed in round one
        "write -z 4M 4096",  // partial zeroing of round one's data
        "write -z 9M 512k",  // zeros over the rest of the base data at 8M..10M
        "write -P 0x32 9437183 2",  // straddles into those zeros
        "discard 16M 64k",  // discard the whole third base extent
        "write -P 0x33 33554431 2",  // across the 32 MiB boundary, in a hole
        "write -P 0x34 67108862 1",  // the second-to-last byte
    ]
}

extension CopyIntegration {
    @Suite("Incremental copy with a qemu dirty bitmap", .serialized)
    struct IncrementalCopyTests {
        @Test("One cumulative bitmap: full copy, then two incrementals, exact after each", .timeLimit(.minutes(2)))
        func cumulativeBitmap() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io(GuestWrites.base)
                try await image.addBitmap("b0")
                let target = fx.target()

                var server = try await image.serve(bitmap: "b0")
                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target]))
                server.stop()
                try await expectMatches(fx, target: target, image: image)
                let inode = try FileFacts.inode(target)

                try await image.io(GuestWrites.firstRound)
                server = try await image.serve(bitmap: "b0")
                let first = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0", "--json"])
                try requireSuccess(first)
                server.stop()
                try await expectMatches(fx, target: target, image: image)
                #expect(try FileFacts.inode(target) == inode, "an incremental update must be in place")
                #expect(!FileFacts.exists(Pullback.markerPath(for: target)), "marker left after success")

                let stats = try CopyStats.decode(stdout: first.stdout)
                #expect(stats.mode == "incremental", "\(stats)")
                #expect(stats.exportSize == Int64(64 * mib))
                // Dirty: about 10 granules of 64 KiB plus 1 MiB of discard; allow widening, not the disk.
                #expect(stats.bytesRead > 0 && stats.bytesRead <= Int64(4 * mib), "not only dirty bytes read: \(stats)")
                #expect(stats.zeroBytes > 0, "zeros written over data must count as zero bytes: \(stats)")
                #expect(stats.bytesWritten <= stats.bytesRead, "\(stats)")

                try await image.io(GuestWrites.secondRound)
                server = try await image.serve(bitmap: "b0")
                let second = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0", "--json"])
                try requireSuccess(second)
                server.stop()
                try await expectMatches(fx, target: target, image: image)
                #expect(try FileFacts.inode(target) == inode)
                let secondStats = try CopyStats.decode(stdout: second.stdout)
                #expect(secondStats.mode == "incremental" && secondStats.zeroBytes > 0, "\(secondStats)")
                #expect(try FileFacts.listing(fx.outDir) == ["target.raw"], "leftovers beside the target")
            }
        }

        @Test(
            "A new bitmap per copy: each incremental reads only what changed since the last one",
            .timeLimit(.minutes(2)))
        func bitmapPerCopy() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io(GuestWrites.base)
                let target = try await image.fullCopyWithBitmap("b0")

                // Round one is big (8 MiB) so re-reading it later would show.
                try await image.io(["write -P 0x41 40M 8M"] + GuestWrites.firstRound)
                var server = try await image.serve(bitmap: "b0")
                let first = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0", "--json"])
                try requireSuccess(first)
                server.stop()
                try await expectMatches(fx, target: target, image: image)
                #expect(try CopyStats.decode(stdout: first.stdout).bytesRead >= Int64(8 * mib))

                // The state the target now holds is where b1 starts.
                try await image.addBitmap("b1")
                try await image.removeBitmap("b0")
                try await image.io(GuestWrites.secondRound + ["write -z 41M 1M", "write -P 0x42 44M 4k"])
                server = try await image.serve(bitmap: "b1")
                let second = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b1", "--json"])
                try requireSuccess(second)
                server.stop()
                try await expectMatches(fx, target: target, image: image)
                let stats = try CopyStats.decode(stdout: second.stdout)
                #expect(stats.mode == "incremental")
                #expect(stats.bytesRead <= Int64(4 * mib), "round one's 8 MiB was read again: \(stats)")
                #expect(stats.zeroBytes > 0, "\(stats)")

                // And once more with a third bitmap and a single write.
                try await image.addBitmap("b2")
                try await image.io("write -P 0x51 63M 1")
                server = try await image.serve(bitmap: "b2")
                let third = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b2", "--json"])
                try requireSuccess(third)
                server.stop()
                try await expectMatches(fx, target: target, image: image)
                #expect(try CopyStats.decode(stdout: third.stdout).bytesRead <= Int64(mib))
            }
        }

        @Test("A leftover update marker blocks incrementals until an --overwrite full copy", .timeLimit(.minutes(2)))
        func leftoverMarker() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 16 * mib)
                try await image.io("write -P 0x11 0 1M")
                let target = try await image.fullCopyWithBitmap("b0")

                let marker = Pullback.markerPath(for: target)
                try FileFacts.create(marker, with: Data())
                try await image.io("write -P 0x22 0 64k", "write -z 512k 64k")
                let server = try await image.serve(bitmap: "b0")
                let before = try FileFacts.contents(target)
                let refused = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0"])
                expectCleanFailure(refused, mentioning: ["--overwrite"])
                #expect(try FileFacts.contents(target) == before, "a refused incremental changed the target")
                #expect(FileFacts.exists(marker), "a refused incremental removed the marker")

                // Without --overwrite a full copy is refused too (the target exists).
                expectCleanFailure(try await Pullback.copy(fx, [server.uri(), target]))
                #expect(FileFacts.exists(marker))

                try requireSuccess(try await Pullback.copy(fx, [server.uri(), target, "--overwrite"]))
                server.stop()
                #expect(!FileFacts.exists(marker), "--overwrite full copy must remove the marker")
                try await expectMatches(fx, target: target, image: image)
            }
        }

        @Test(
            "A 6 GiB disk: extents past 4 GiB and across the 32-bit boundary, full and incremental",
            .timeLimit(.minutes(2)))
        func beyondFourGiB() async throws {
            try await Fixture.run { fx in
                let size = 6 * 1024 * mib
                let fourGiB = 4 * 1024 * mib
                let image = try await QCOW2Image.create(fx, size: size)
                try await image.io(
                    "write -P 0x11 0 1M", "write -P 0x12 \(fourGiB - 64 * kib) 128k", "write -P 0x13 \(size - 1) 1")
                try await image.addBitmap("b0")
                let target = fx.target()

                var server = try await image.serve()
                let full = try await Pullback.copy(fx, [server.uri(), target, "--json"])
                try requireSuccess(full)
                server.stop()
                try await expectMatches(fx, target: target, image: image, byteForByte: false)
                #expect(try FileFacts.allocated(target) < Int64(8 * mib))
                #expect(try CopyStats.decode(stdout: full.stdout).bytesRead <= Int64(4 * mib))

                try await image.io(
                    "write -z \(fourGiB - 1) 2",  // zeros across the 4 GiB boundary, over data
                    "write -P 0x21 \(5 * 1024 * mib) 64k",
                    "write -P 0x22 \(size - 1) 1",
                    "discard 0 1M")
                server = try await image.serve(bitmap: "b0")
                let incremental = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0", "--json"])
                try requireSuccess(incremental)
                server.stop()
                try await expectMatches(fx, target: target, image: image, byteForByte: false)
                #expect(try FileFacts.bytes(target, at: UInt64(fourGiB - 2), count: 4) == Data([0x12, 0, 0, 0x12]))
                #expect(
                    try FileFacts.bytes(target, at: UInt64(5 * 1024 * mib), count: 64 * kib)
                        == Data(repeating: 0x21, count: 64 * kib))
                #expect(try FileFacts.bytes(target, at: UInt64(size - 1), count: 1) == Data([0x22]))
                #expect(try FileFacts.bytes(target, at: 0, count: mib) == Data(count: mib))
                let stats = try CopyStats.decode(stdout: incremental.stdout)
                #expect(stats.bytesRead <= Int64(4 * mib) && stats.zeroBytes > 0, "\(stats)")
            }
        }

        @Test("An incremental touches only dirty extents of the target", .timeLimit(.minutes(2)))
        func cleanExtentsUntouched() async throws {
            try await Fixture.run { fx in
                let image = try await QCOW2Image.create(fx, size: 64 * mib)
                try await image.io(GuestWrites.base)
                let target = try await image.fullCopyWithBitmap("b0")

                // Marks in the target where the source stays clean: one in data, one in a hole.
                let mark = Data(repeating: 0xEE, count: 4096)
                try FileFacts.overwrite(target, at: UInt64(256 * kib), with: mark)
                try FileFacts.overwrite(target, at: UInt64(32 * mib), with: mark)

                try await image.io("write -P 0x21 4M 64k", "write -z 8M 64k", "write -P 0x22 50M 100")
                let server = try await image.serve(bitmap: "b0")
                let result = try await Pullback.copy(fx, [server.uri(), target, "--bitmap", "b0", "--json"])
                try requireSuccess(result)
                server.stop()

                #expect(
                    try FileFacts.bytes(target, at: UInt64(256 * kib), count: 4096) == mark,
                    "clean data extent rewritten")
                #expect(try FileFacts.bytes(target, at: UInt64(32 * mib), count: 4096) == mark, "clean hole rewritten")
                #expect(
                    try FileFacts.bytes(target, at: UInt64(4 * mib), count: 64 * kib)
                        == Data(repeating: 0x21, count: 64 * kib))
                #expect(try FileFacts.bytes(target, at: UInt64(8 * mib), count: 64 * kib) == Data(count: 64 * kib))
                #expect(
                    try FileFacts.bytes(target, at: UInt64(50 * mib), count: 100) == Data(repeating: 0x22, count: 100))

                // Undo the marks from the reference's bytes: then everything else must be identical.
                let reference = try await image.rawReference()
                for offset in [UInt64(256 * kib), UInt64(32 * mib)] {
                    try FileFacts.overwrite(
                        target, at: offset, with: try FileFacts.bytes(reference, at: offset, count: 4096))
                }
                try await expectSameBytes(fx, target, reference)
                let stats = try CopyStats.decode(stdout: result.stdout)
                #expect(stats.bytesRead <= Int64(mib), "\(stats)")
            }
        }
    }
}
