import Foundation
import Testing

extension CopyIntegration {
    /// Incremental backups whose checkpoint bitmap missed writes, and `pullback backup --check-source`, which reads
    /// the whole point-in-time export, copies the blocks where the new point would differ from the disk and names
    /// them. Each scenario runs twice on a fresh guest: a plain incremental, whose restore must differ from the disk
    /// exactly at the missed 64 KiB blocks (so the scenario really damages the bitmap), and the same with
    /// `--check-source`, whose point must restore identical and report those blocks.
    ///
    /// Measured with libvirt 9.0 and QEMU 7.2: `block-dirty-bitmap-clear` and `block-dirty-bitmap-disable` through
    /// QMP go unnoticed by libvirt, as long as the bitmap records again by the next backup (a bitmap left disabled
    /// makes libvirt call the checkpoint broken, and pullback backs up in full). An external disk-only snapshot and an
    /// active block commit of guest writes lose nothing: libvirt adds each checkpoint's bitmap to the overlay and
    /// merges it back at the pivot, and the commit's own writes mark the base's bitmaps (even a bitmap cleared on the
    /// overlay misses nothing after the commit; the base's bitmaps are read-only while it backs the overlay). What
    /// a snapshot does lose is data the overlay held before it was put under the disk (`--reuse-external`). libvirt
    /// refuses an external snapshot of a shut-off domain with checkpoints ("cannot perform block operations while
    /// checkpoint exists").
    @Suite("pullback backup --check-source after a wrong bitmap (embedded libvirt)", .serialized)
    struct WrongBitmapTests {
        /// How the incremental after the damage is made.
        enum Incremental: String, CaseIterable, Sendable, CustomTestStringConvertible {
            /// `pullback backup`: trusts the bitmap.
            case plain
            /// `pullback backup --check-source`.
            case checkSource

            var testDescription: String { rawValue }
        }

        /// The `source_check` member of `pullback backup --check-source --json`.
        struct SourceCheckReport: Decodable {
            struct Disk: Decodable {
                struct Range: Decodable {
                    let offset: Int64
                    let length: Int64
                }

                let disk: String
                let differingBlocks: Int
                let differingBytes: Int64
                let ranges: [Range]

                enum CodingKeys: String, CodingKey {
                    case disk, ranges
                    case differingBlocks = "differing_blocks"
                    case differingBytes = "differing_bytes"
                }

                /// The 64 KiB blocks the ranges cover, in order.
                var blocks: [Int] {
                    let size = Int64(BlockDifference.blockSize)
                    let covered = ranges.filter { $0.length > 0 }.flatMap {
                        Int($0.offset / size)...Int(($0.offset + $0.length - 1) / size)
                    }
                    return Array(Set(covered)).sorted()
                }
            }

            let sourceCheck: [Disk]?

            enum CodingKeys: String, CodingKey {
                case sourceCheck = "source_check"
            }

            static func decode(_ result: CommandResult) throws -> SourceCheckReport {
                do {
                    return try JSONDecoder().decode(SourceCheckReport.self, from: Data(result.stdout.utf8))
                } catch {
                    throw HarnessError("cannot decode source_check in \(result.stdout): \(error)")
                }
            }
        }

        static let diskSize = 16 * mib

        /// The 64 KiB block index of a byte offset.
        static func block(_ offset: Int) -> Int { offset / BlockDifference.blockSize }

        /// Writes 1 MiB and makes the full point the scenarios start from; returns its id and the disk as it was.
        static func fullBackup(_ guest: LibvirtGuest) async throws -> (point: String, snapshot: String) {
            try await guest.write("vda", "write -P 0x51 0 1M")
            let (full, _) = try await BackupTests.backup(guest)
            try #require(full.level == "full", "\(full)")
            return (full.point, try #require(try await guest.snapshot("full")["vda"]))
        }

        /// Restores point `id` as raw into `out/<label>/` and returns the vda image.
        static func restoreRaw(_ guest: LibvirtGuest, _ id: String, label: String) async throws -> String {
            let dir = guest.fx.target(label)
            try requireSuccess(
                try await guest.pullback([
                    "restore", "--repo", guest.repo, guest.name, "--at", id, "--to", dir, "--format", "raw",
                ]))
            return "\(dir)/vda.raw"
        }

        /// Backs up incrementally from `parent` the way `incremental` says, checks the point against the disk and
        /// returns its id: a plain incremental restores with exactly the `missed` blocks wrong; `--check-source`
        /// reports exactly those blocks (on stderr and in `source_check`) and restores identical.
        static func expectIncremental(
            _ incremental: Incremental, _ guest: LibvirtGuest, from parent: String, missed: [Int],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> String {
            let result = try await guest.backup(incremental == .checkSource ? ["--check-source"] : [])
            try requireSuccess(result, sourceLocation: sourceLocation)
            let point = try BackupSummary.decode(result)
            let reference = try #require(try await guest.snapshot("after")["vda"], sourceLocation: sourceLocation)
            #expect(
                point.level == "incremental" && point.parent == parent && point.disk("vda")?.mode == "incremental",
                "\(point)", sourceLocation: sourceLocation)

            switch incremental {
            case .plain:
                try await expectRestore(
                    guest, point.point, differingFrom: reference, at: missed, label: "plain",
                    sourceLocation: sourceLocation)

            case .checkSource:
                let report = try SourceCheckReport.decode(result)
                let checks = try #require(
                    report.sourceCheck, "no source_check in \(result.stdout)", sourceLocation: sourceLocation)
                let found = try #require(
                    checks.first { $0.disk == "vda" }, "no source_check entry for vda: \(checks)",
                    sourceLocation: sourceLocation)
                #expect(found.differingBlocks == missed.count, "\(found)", sourceLocation: sourceLocation)
                #expect(
                    found.differingBytes == Int64(missed.count * BlockDifference.blockSize), "\(found)",
                    sourceLocation: sourceLocation)
                #expect(found.blocks == missed, "ranges of \(found)", sourceLocation: sourceLocation)
                #expect(
                    result.stderrLines.contains { $0.contains("missed") },
                    "no line about the missed blocks on stderr: \(result.stderr)", sourceLocation: sourceLocation)
                try await BackupTests.expectRestores(
                    guest, at: point.point, matching: ["vda": reference], label: "checked",
                    sourceLocation: sourceLocation)
            }
            return point.point
        }

        /// Writes a little more, backs up plainly from `parent` and expects the point to restore differing from the
        /// disk at exactly the `stillMissed` blocks: a plain chain keeps what its bitmap missed until a full backup.
        static func expectNextIncremental(
            _ guest: LibvirtGuest, from parent: String, stillMissed: [Int],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            // A whole block and part of one, away from every block the scenarios write or miss.
            try await guest.write("vda", "write -P 0x5f 15M 64k", "write -P 0x5e 1M 4k")
            let (next, _) = try await BackupTests.backup(guest, sourceLocation: sourceLocation)
            let reference = try #require(try await guest.snapshot("next")["vda"], sourceLocation: sourceLocation)
            #expect(
                next.level == "incremental" && next.parent == parent, "\(next)", sourceLocation: sourceLocation)
            try await expectRestore(
                guest, next.point, differingFrom: reference, at: stillMissed, label: "next",
                sourceLocation: sourceLocation)
        }

        /// Restores point `id` as raw and expects it to differ from `reference` in exactly the `blocks` (`cmp`
        /// succeeds when there are none).
        static func expectRestore(
            _ guest: LibvirtGuest, _ id: String, differingFrom reference: String, at blocks: [Int], label: String,
            sourceLocation: SourceLocation
        ) async throws {
            let restored = try await restoreRaw(guest, id, label: label)
            let cmp = try await guest.fx.run(["cmp", restored, reference])
            #expect(
                cmp.succeeded == blocks.isEmpty,
                "cmp of point \(id) restored with the disk: \(cmp.stdout)\(cmp.stderr)",
                sourceLocation: sourceLocation)
            #expect(
                try BlockDifference.blocks(restored, reference) == blocks,
                "the 64 KiB blocks where point \(id) differs from the disk", sourceLocation: sourceLocation)
        }

        @Test(
            "Bitmap cleared through QMP after writes: a plain incremental misses them, --check-source copies them",
            .timeLimit(.minutes(2)), arguments: Incremental.allCases)
        func clearedBitmap(_ incremental: Incremental) async throws {
            try await LibvirtGuest.run(disks: [("vda", Self.diskSize)]) { _, guest in
                let full = try await Self.fullBackup(guest)
                try await guest.write("vda", "write -P 0x52 2M 128k", "write -P 0x53 5M 64k", "write -P 0x54 9M 64k")
                try await guest.changeBitmaps("clear", target: "vda")
                let cleared = try await guest.formatNode(of: guest.image("vda"))
                #expect(cleared.bitmaps.allSatisfy { $0.count == 0 }, "\(cleared)")
                // 9M is written again after the clear, so only 2M, 2M + 64k and 5M are missed.
                try await guest.write("vda", "write -P 0x55 9M 64k", "write -P 0x56 12M 64k")
                let missed = [Self.block(2 * mib), Self.block(2 * mib) + 1, Self.block(5 * mib)]
                let point = try await Self.expectIncremental(incremental, guest, from: full.point, missed: missed)
                try await Self.expectNextIncremental(
                    guest, from: point, stillMissed: incremental == .plain ? missed : [])
            }
        }

        @Test(
            "Bitmap cleared, then a synthetic full at --max-chain with --check-source: the missed blocks come from the disk, not the chain",
            .timeLimit(.minutes(2)))
        func clearedBitmapSyntheticFull() async throws {
            try await LibvirtGuest.run(disks: [("vda", Self.diskSize)]) { _, guest in
                _ = try await Self.fullBackup(guest)
                try await guest.write("vda", "write -P 0x52 2M 128k")
                try await guest.changeBitmaps("clear", target: "vda")
                try await guest.write("vda", "write -P 0x56 12M 64k")
                let result = try await guest.backup(["--check-source", "--max-chain", "1"])
                try requireSuccess(result)
                let point = try BackupSummary.decode(result)
                #expect(point.level == "full" && point.parent == nil, "a synthetic full: \(point)")
                let checks = try #require(try SourceCheckReport.decode(result).sourceCheck)
                #expect(checks.map(\.disk) == ["vda"] && checks[0].blocks == [32, 33], "\(checks)")
                let reference = try #require(try await guest.snapshot("after")["vda"])
                try await BackupTests.expectRestores(
                    guest, at: point.point, matching: ["vda": reference], label: "synthetic")
            }
        }

        @Test(
            "Bitmap disabled through QMP, written around, enabled again: a plain incremental misses the writes between",
            .timeLimit(.minutes(2)), arguments: Incremental.allCases)
        func disabledBitmap(_ incremental: Incremental) async throws {
            try await LibvirtGuest.run(disks: [("vda", Self.diskSize)]) { _, guest in
                let full = try await Self.fullBackup(guest)
                try await guest.write("vda", "write -P 0x62 2M 128k", "write -P 0x63 9M 64k")
                try await guest.changeBitmaps("disable", target: "vda")
                let disabled = try await guest.formatNode(of: guest.image("vda"))
                #expect(disabled.bitmaps.allSatisfy { !$0.recording }, "\(disabled)")
                // 9M was marked before the bitmap stopped, so its second write is copied anyway.
                try await guest.write(
                    "vda", "write -P 0x64 9M 64k", "write -P 0x65 12M 64k", "write -P 0x66 14M 128k")
                // Left disabled, libvirt would call the checkpoint broken and pullback would back up in full;
                // recording again, the bitmap passes for whole.
                try await guest.changeBitmaps("enable", target: "vda")
                try await guest.write("vda", "write -P 0x67 4M 64k")
                let missed = [Self.block(12 * mib), Self.block(14 * mib), Self.block(14 * mib) + 1]
                let point = try await Self.expectIncremental(incremental, guest, from: full.point, missed: missed)
                try await Self.expectNextIncremental(
                    guest, from: point, stillMissed: incremental == .plain ? missed : [])
            }
        }

        @Test(
            "Disk-only snapshot onto an overlay holding data, then active commit: the point between misses the data",
            .timeLimit(.minutes(2)), arguments: Incremental.allCases)
        func snapshotAndCommit(_ incremental: Incremental) async throws {
            try await LibvirtGuest.run(disks: [("vda", Self.diskSize)]) { fx, guest in
                let full = try await Self.fullBackup(guest)
                let base = guest.image("vda")
                let overlay = fx.path("vda-overlay.qcow2")
                try await guest.write("vda", "write -P 0x72 2M 128k")

                // The overlay gets its data before it backs onto the running disk (made standalone, then rebased
                // without opening the base, which QEMU holds).
                try await fx.runChecked(["qemu-img", "create", "-q", "-f", "qcow2", overlay, String(Self.diskSize)])
                try await fx.runChecked(["qemu-io", "-f", "qcow2", "-c", "write -P 0x99 11M 64k", overlay])
                try await fx.runChecked(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay])
                try await fx.runChecked(["qemu-io", "-f", "raw", "-c", "write -P 0x99 11M 64k", guest.reference("vda")])
                try await guest.snapshotDiskOnly("vda", overlay: overlay, reuse: true)
                #expect(try await guest.source(of: "vda") == overlay)
                // libvirt adds each checkpoint's bitmap to the overlay, empty: the overlay's own data is not in it.
                let overlayNode = try await guest.formatNode(of: overlay)
                #expect(
                    !overlayNode.bitmaps.isEmpty && overlayNode.bitmaps.allSatisfy { $0.count == 0 },
                    "\(overlayNode)")
                try await guest.write("vda", "write -P 0x73 5M 64k")
                let missed = [Self.block(11 * mib)]
                let point = try await Self.expectIncremental(incremental, guest, from: full.point, missed: missed)

                // The commit's writes mark the older checkpoints' bitmaps in the base, not the one the point began
                // on the overlay: a plain chain goes on without the overlay's data.
                try await guest.activeCommit("vda")
                #expect(try await guest.source(of: "vda") == base)
                try await Self.expectNextIncremental(
                    guest, from: point, stillMissed: incremental == .plain ? missed : [])
            }
        }
    }
}
