import Foundation
import Testing

extension BackupIntegration {
    /// A disk resized between two backups (issue 19, item 9): grown with `virsh blockresize`, its chain goes on
    /// incrementally, the overlay larger than its backing; shrunk on a shut-off domain, that disk starts a new chain
    /// with a full copy and a note. Every restore is compared with a reference raw file that received the same
    /// writes and resizes as the guest.
    @Suite("pullback backup of resized disks (embedded libvirt)", .serialized)
    struct ResizedDiskTests {
        /// Resizes the disk's reference raw file as the guest's disk was.
        static func resizeReference(_ guest: LibvirtGuest, _ target: String, to size: Int) async throws {
            try await guest.fx.runChecked(["truncate", "-s", String(size), guest.reference(target)])
        }

        /// Backs up once more after `write`, and expects the point to continue `target`'s chain from `parent`
        /// incrementally and to restore as the disks are; returns the backup's stderr.
        static func expectChainGoesOn(
            _ guest: LibvirtGuest, from parent: String, target: String, after write: () async throws -> Void,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> String {
            try await write()
            let (next, result) = try await BackupTests.backup(guest, sourceLocation: sourceLocation)
            let snapshot = try await guest.snapshot("next")
            #expect(
                next.parent == parent && next.disk(target)?.mode == "incremental", "\(next)",
                sourceLocation: sourceLocation)
            try await BackupTests.expectRestores(
                guest, at: next.point, matching: snapshot, label: "next", sourceLocation: sourceLocation)
            return result.stderr
        }

        @Test(
            "A disk grown with blockresize: the next backup is incremental and restores identical, past the old end too",
            .timeLimit(.minutes(4)))
        func grownDisk() async throws {
            try await LibvirtGuest.run(disks: [("vda", 64 * mib)]) { fx, guest in
                try await guest.write("vda", "write -P 0x31 0 2M", "write -P 0x32 \(64 * mib - 65536) 64k")
                let (full, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")

                try await guest.virshChecked(["blockresize", guest.name, "vda", "96M"])
                try await Self.resizeReference(guest, "vda", to: 96 * mib)
                // Before the old end, across it, past it, and the new last cluster.
                try await guest.write(
                    "vda", "write -P 0x33 1M 64k", "write -P 0x34 \(64 * mib - 32768) 64k",
                    "write -P 0x35 80M 1M", "write -P 0x36 \(96 * mib - 65536) 64k")
                let (grown, _) = try await BackupTests.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(grown.level == "incremental" && grown.parent == full.point, "\(grown)")
                #expect(grown.disk("vda")?.mode == "incremental", "\(grown)")
                // The writes, widened to clusters: about 1.2 MiB, not the disk.
                #expect((grown.disk("vda")?.bytesRead ?? 0) < Int64(4 * mib), "\(grown)")
                let image = "\(guest.repo)/\(guest.name)/\(grown.point)/vda.qcow2"
                let chain = try await Qemu.chain(image, using: fx)
                #expect(
                    chain.map(\.virtualSize) == [Int64(96 * mib), Int64(64 * mib)],
                    "the overlay is larger than its backing: \(chain)")
                try await Qemu.expectCheckClean(fx, image)
                try await Qemu.expectIdentical(fx, image, snap2["vda"]!)
                try await BackupTests.expectRestores(guest, at: grown.point, matching: snap2, label: "grown")
                try await BackupTests.expectRestores(guest, at: full.point, matching: snap1, label: "before")

                // The chain goes on from the grown point.
                _ = try await Self.expectChainGoesOn(guest, from: grown.point, target: "vda") {
                    try await guest.write("vda", "write -P 0x37 90M 64k")
                }
                let third = try #require(try await guest.list().last?.id)
                let snap3 = try await guest.snapshot("3")
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))

                // Pruning the full point merges the grown point (its backing shorter) into a full one.
                try requireSuccess(
                    try await guest.pullback([
                        "prune", "--repo", guest.repo, guest.name, "--keep", "2", "--connect", guest.uri,
                    ]))
                #expect(try await guest.list().map(\.id) == [grown.point, third])
                try await BackupTests.expectRestores(guest, at: grown.point, matching: snap2, label: "merged")
                try await BackupTests.expectRestores(guest, at: third, matching: snap3, label: "after-merge")
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))
            }
        }

        @Test(
            "A disk shrunk on a shut-off domain: the next backup copies it in full with a note, and goes on from there",
            .timeLimit(.minutes(4)))
        func shrunkDisk() async throws {
            // Shut off throughout: each backup starts it paused and shuts it off again.
            try await LibvirtGuest.run(disks: [("vda", 64 * mib), ("vdb", 32 * mib)], running: false) { fx, guest in
                try await guest.writeOffline(
                    "vda", "write -P 0x41 0 2M", "write -P 0x42 40M 1M", "write -P 0x43 60M 64k")
                try await guest.writeOffline("vdb", "write -P 0x44 0 1M")
                let (full, _) = try await BackupTests.backup(guest)
                let snap1 = try await guest.snapshot("1")
                #expect(try await guest.state() == "shut off")

                try await fx.runChecked([
                    "qemu-img", "resize", "-q", "-f", "qcow2", "--shrink", guest.image("vda"), "48M",
                ])
                try await Self.resizeReference(guest, "vda", to: 48 * mib)
                try await guest.writeOffline("vda", "write -P 0x45 4M 64k")
                try await guest.writeOffline("vdb", "write -P 0x46 8M 64k")

                let (shrunk, result) = try await BackupTests.backup(guest)
                let snap2 = try await guest.snapshot("2")
                #expect(shrunk.level == "incremental" && shrunk.parent == full.point, "\(shrunk)")
                #expect(shrunk.disk("vda")?.mode == "full", "\(shrunk)")
                #expect(shrunk.disk("vdb")?.mode == "incremental", "\(shrunk)")
                #expect(result.stderr.contains("vda shrank"), "no note about the shrunk disk: \(result.stderr)")
                let chain = try await Qemu.chain("\(guest.repo)/\(guest.name)/\(shrunk.point)/vda.qcow2", using: fx)
                #expect(chain.count == 1 && chain.first?.virtualSize == Int64(48 * mib), "\(chain)")
                try await BackupTests.expectRestores(guest, at: shrunk.point, matching: snap2, label: "shrunk")
                try await BackupTests.expectRestores(guest, at: full.point, matching: snap1, label: "before")

                // The next backup continues that disk's new chain incrementally; nothing repeats.
                let stderr = try await Self.expectChainGoesOn(guest, from: shrunk.point, target: "vda") {
                    try await guest.writeOffline("vda", "write -P 0x47 20M 64k")
                }
                #expect(!stderr.contains("shrank"), "\(stderr)")
                try requireSuccess(try await guest.pullback(["verify", "--repo", guest.repo, guest.name]))
            }
        }
    }
}
