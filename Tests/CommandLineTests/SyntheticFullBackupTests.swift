import Foundation
import Testing

extension BackupIntegration {
    /// `--level auto` at `--max-chain` (issue 19, item 8): the new chain starts with a synthetic full, built from the
    /// repository's chain and the changes since its newest point (an incremental job, a standalone image), not with a
    /// full read of the disks; a damaged chain makes it a plain full read instead. Every restore is compared byte for
    /// byte with the reference raw files that received the guest's writes.
    @Suite("backup at --max-chain builds a synthetic full (embedded libvirt)", .serialized)
    struct SyntheticFullBackupTests {
        static let maxChain = ["--max-chain", "3"]

        /// A full and two incrementals under `--max-chain 3`, each with the snapshot it must restore to; the writes
        /// overlap so that the chain's layers hide each other's data in places.
        static func chainOfThree(_ guest: LibvirtGuest, extra: [String] = []) async throws -> [(
            id: String, snapshot: [String: String]
        )] {
            let writes: [(vda: [String], vdb: [String])] = [
                (["write -P 0x31 0 8M", "write -P 0x32 12M 2M"], ["write -P 0x33 0 4M"]),
                (["write -P 0x41 1M 64k", "write -P 0x42 100k 3", "write -z 2M 128k"], ["write -P 0x43 2M 64k"]),
                (["write -P 0x51 1M 32k", "write -P 0x52 6M 1M"], ["write -z 0 64k"]),
            ]
            var points: [(id: String, snapshot: [String: String])] = []
            for (index, write) in writes.enumerated() {
                for command in write.vda { try await guest.write("vda", command) }
                for command in write.vdb { try await guest.write("vdb", command) }
                let (summary, _) = try await BackupTests.backup(guest, maxChain + extra)
                #expect(summary.level == (index == 0 ? "full" : "incremental"), "\(summary)")
                points.append((summary.point, try await guest.snapshot("\(index + 1)")))
            }
            return points
        }

        /// The point's images have no backing file.
        static func expectStandalone(
            _ guest: LibvirtGuest, point: String, sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            for disk in guest.disks {
                let image = "\(guest.repo)/\(guest.name)/\(point)/\(disk.target).qcow2"
                let chain = try await Qemu.chain(image, using: guest.fx)
                #expect(
                    chain.count == 1 && chain.first?.backingFilename == nil, "\(image): \(chain.map(\.filename))",
                    sourceLocation: sourceLocation)
                try await Qemu.expectCheckClean(guest.fx, image, sourceLocation: sourceLocation)
            }
        }

        @Test(
            "The 4th backup under --max-chain 3 is a synthetic full: standalone images, only the changes read, restores identical; the chain goes on from it",
            .timeLimit(.minutes(4)))
        func syntheticFull() async throws {
            try await LibvirtGuest.run(disks: [("vda", 32 * mib), ("vdb", 16 * mib)]) { fx, guest in
                let points = try await Self.chainOfThree(guest)
                let ids = points.map(\.id)

                // Changes across what every layer wrote, a partial cluster and zeros among them.
                try await guest.write(
                    "vda", "write -P 0x61 900k 256k", "write -P 0x62 6M 3", "write -z 12M 64k", "write -P 0x63 30M 64k")
                try await guest.write("vdb", "write -P 0x64 3M 64k")
                let (synthetic, result) = try await BackupTests.backup(guest, Self.maxChain)
                let snap4 = try await guest.snapshot("4")
                #expect(synthetic.level == "full" && synthetic.parent == nil, "\(synthetic)")
                #expect(
                    synthetic.reason.contains(
                        "point \(ids[2]) ends a chain of 3 points, the longest --max-chain allows; the new full point is built from the repository and the changes since \(ids[2])"
                    ), "\(synthetic)")
                #expect(result.stderr.contains("built from the repository"), "\(result.stderr)")
                // The changes, widened to clusters and bitmap granules: well under 1 MiB, against 10 MiB of data.
                #expect((synthetic.disk("vda")?.bytesRead ?? .max) < Int64(mib), "\(synthetic)")
                #expect((synthetic.disk("vdb")?.bytesRead ?? .max) < Int64(mib), "\(synthetic)")
                #expect(synthetic.disks.allSatisfy { $0.mode == "full" }, "\(synthetic)")
                let manifest = try PruneTests.manifest(guest, synthetic.point)
                #expect(manifest["level"] as? String == "full" && manifest["parent"] == nil, "\(manifest)")
                #expect(manifest["synthetic"] as? Bool == true, "\(manifest)")
                #expect(manifest["originalParent"] as? String == ids[2], "\(manifest)")
                #expect(manifest["checkpoint"] as? String == synthetic.checkpoint, "\(manifest)")
                #expect(try await guest.checkpoints().contains(synthetic.checkpoint))
                try await Self.expectStandalone(guest, point: synthetic.point)
                try await BackupTests.expectRepositoryImages(
                    guest, point: synthetic.point, parent: nil, matching: snap4)
                try await BackupTests.expectRestores(guest, at: synthetic.point, matching: snap4, label: "synthetic")
                try requireSuccess(
                    try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", synthetic.point]))

                // The next backup is an incremental on it.
                try await guest.write("vda", "write -P 0x71 20M 64k")
                let (next, _) = try await BackupTests.backup(guest, Self.maxChain)
                let snap5 = try await guest.snapshot("5")
                #expect(next.level == "incremental" && next.parent == synthetic.point, "\(next)")
                #expect((next.disk("vda")?.bytesRead ?? .max) <= Int64(mib), "\(next)")
                try await BackupTests.expectRestores(guest, at: next.point, matching: snap5, label: "next")

                // The older points still restore.
                for (index, point) in points.enumerated() {
                    try await BackupTests.expectRestores(
                        guest, at: point.id, matching: point.snapshot, label: "old\(index)")
                }
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))
                _ = fx
            }
        }

        @Test(
            "A damaged image in the chain makes the 4th backup a plain full read of the disks, with a note; it restores identical",
            .timeLimit(.minutes(4)))
        func damagedChain() async throws {
            try await LibvirtGuest.run(disks: [("vda", 32 * mib), ("vdb", 16 * mib)]) { fx, guest in
                let points = try await Self.chainOfThree(guest)
                let damaged = "\(guest.repo)/\(guest.name)/\(points[0].id)/vda.qcow2"
                let offset = UInt64(try FileFacts.size(damaged) / 2)
                let byte = try FileFacts.bytes(damaged, at: offset, count: 1)
                try FileFacts.overwrite(damaged, at: offset, with: Data([byte[0] ^ 0xff]))

                try await guest.write("vda", "write -P 0x61 900k 256k")
                let (full, result) = try await BackupTests.backup(guest, Self.maxChain)
                let snap4 = try await guest.snapshot("4")
                #expect(full.level == "full" && full.parent == nil, "\(full)")
                #expect(result.stderr.contains(damaged) && result.stderr.contains("damaged"), "\(result.stderr)")
                #expect(full.reason.contains("reads the disks in full"), "\(full)")
                // A plain full: every byte of data read from the disks (10 MiB of vda, less 128 KiB of zeros).
                #expect((full.disk("vda")?.bytesRead ?? 0) >= Int64(9 * mib), "\(full)")
                let manifest = try PruneTests.manifest(guest, full.point)
                #expect(manifest["synthetic"] == nil && manifest["originalParent"] == nil, "\(manifest)")
                try await Self.expectStandalone(guest, point: full.point)
                try await BackupTests.expectRestores(guest, at: full.point, matching: snap4, label: "full")
                try requireSuccess(
                    try await guest.pullback(["verify", "--repo", guest.repo, guest.name, "--at", full.point]))
                _ = fx
            }
        }

        @Test(
            "A raw disk (--raw-disks full) at the limit is read in full within the synthetic full; both disks restore identical",
            .timeLimit(.minutes(4)))
        func rawDiskAtTheLimit() async throws {
            try await LibvirtGuest.run(disks: [("vda", 32 * mib), ("vdb", 16 * mib)], rawDisks: ["vdb"]) { _, guest in
                let raw = ["--raw-disks", "full"]
                let points = try await Self.chainOfThree(guest, extra: raw)
                try await guest.write("vda", "write -P 0x61 900k 256k")
                try await guest.write("vdb", "write -P 0x62 5M 64k")
                let (synthetic, _) = try await BackupTests.backup(guest, Self.maxChain + raw)
                let snap4 = try await guest.snapshot("4")
                #expect(synthetic.level == "full" && synthetic.parent == nil, "\(synthetic)")
                #expect(try PruneTests.manifest(guest, synthetic.point)["synthetic"] as? Bool == true)
                #expect((synthetic.disk("vda")?.bytesRead ?? .max) < Int64(mib), "\(synthetic)")
                // The raw disk has no bitmap: its 4 MiB of data are read again, as at every point.
                #expect((synthetic.disk("vdb")?.bytesRead ?? 0) >= Int64(4 * mib - 65536), "\(synthetic)")
                try await Self.expectStandalone(guest, point: synthetic.point)
                try await BackupTests.expectRestores(guest, at: synthetic.point, matching: snap4, label: "raw")
                try await BackupTests.expectRestores(
                    guest, at: points[2].id, matching: points[2].snapshot, label: "old")
            }
        }

        @Test(
            "A disk grown at the limit: the synthetic full restores identical, past the old end too",
            .timeLimit(.minutes(4)))
        func grownDisk() async throws {
            try await LibvirtGuest.run(disks: [("vda", 16 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 8M", "write -P 0x32 \(16 * mib - 65536) 64k")
                var ids: [String] = []
                for index in 0..<3 {
                    try await guest.write("vda", "write -P \(0x41 + index) \(index)M 64k")
                    ids.append(try await BackupTests.backup(guest, Self.maxChain).0.point)
                }
                let snap3 = try await guest.snapshot("3")

                try await guest.virshChecked(["blockresize", guest.name, "vda", "24M"])
                try await ResizedDiskTests.resizeReference(guest, "vda", to: 24 * mib)
                // Before the old end, across it, past it, and the new last cluster.
                try await guest.write(
                    "vda", "write -P 0x51 1M 64k", "write -P 0x52 \(16 * mib - 32768) 64k", "write -P 0x53 18M 1M",
                    "write -P 0x54 \(24 * mib - 65536) 64k")
                let (synthetic, result) = try await BackupTests.backup(guest, Self.maxChain)
                let snap4 = try await guest.snapshot("4")
                #expect(synthetic.level == "full" && synthetic.parent == nil, "\(synthetic)")
                #expect(result.stderr.contains("built from the repository"), "\(result.stderr)")
                #expect(try PruneTests.manifest(guest, synthetic.point)["synthetic"] as? Bool == true)
                // The changes and what lies past the old end: not the 8 MiB before it.
                #expect((synthetic.disk("vda")?.bytesRead ?? .max) < Int64(4 * mib), "\(synthetic)")
                let image = "\(guest.repo)/\(guest.name)/\(synthetic.point)/vda.qcow2"
                let chain = try await Qemu.chain(image, using: fx)
                #expect(chain.map(\.virtualSize) == [Int64(24 * mib)] && chain.first?.backingFilename == nil)
                try await Qemu.expectIdentical(fx, image, snap4["vda"]!)
                try await BackupTests.expectRestores(guest, at: synthetic.point, matching: snap4, label: "grown")
                try await BackupTests.expectRestores(guest, at: ids[2], matching: snap3, label: "before")
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))
            }
        }
    }
}
